"""Exactly one billable row per provider call whatever else is installed (issue #13).

Each setup is a real app process (``peer_setup``) with a real peer package and ours, in
either instrumentation order, making one call of each kind (OpenAI chat, chat stream,
Responses, embeddings, async chat; Anthropic create, ``stream=True``, ``.stream()``, async
``.stream()``) against the provider stand-in under one attribution. OpenLIT pins older
openai/anthropic majors than ours: its app process runs in ``.venv-openlit`` (``make test``
builds it). Every span it exported
goes through the collector's real pipeline into chDB; the stored rows are counted per
provider call, and the stand-in's received headers are checked for our baggage.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.pipeline.worker import Pipeline
from featurecost.collector.storage.client import Storage
from featurecost.instrumentation.attribution import is_attribution_key
from tests.conftest import RunningStandIn

_ROOT = Path(__file__).resolve().parents[2]
_PEERS = ("openllmetry", "openinference", "openai-v2", "logfire", "langfuse", "openlit")
# OpenLIT pins openai<3 and anthropic<1: its app process runs in its own venv (make openlit-venv)
_PYTHON = {"openlit": _ROOT / ".venv-openlit" / "bin" / "python"}
_PROVIDER_CALLS = 9  # what peer_setup._calls makes


def _run_app(peer: str, order: str, url: str, out: Path) -> bytes:
    subprocess.run(
        [str(_PYTHON.get(peer, sys.executable)), "-m", "tests.instrumentation.peer_setup", peer, order, url, str(out)],
        cwd=_ROOT,
        check=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return out.read_bytes()


def _store(tmp_path: Path, storage: Storage, payload: bytes) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append(payload).result(10)
    pipeline = Pipeline(wal, storage, batch_rows=100_000, flush_interval=0.01)
    pipeline.start()
    assert pipeline.stop(60)
    wal.close()


@pytest.mark.parametrize("order", ["peer-first", "ours-first"])
@pytest.mark.parametrize("peer", _PEERS)
def test_one_billable_row_per_call_with_a_peer_installed(
    tmp_path: Path, storage: Storage, stand_in: RunningStandIn, peer: str, order: str
) -> None:
    _store(tmp_path, storage, _run_app(peer, order, stand_in.url, tmp_path / "spans.pb"))
    billable = storage.query_text(
        "SELECT feature, tenant, user_id, response_id, provider, operation FROM calls FINAL WHERE superseded_by = ''"
    )
    assert len(stand_in.stand_in.requests) == _PROVIDER_CALLS
    # one billable row per provider call, each carrying our attribution
    assert len(billable) == _PROVIDER_CALLS, billable
    assert {(r["feature"], r["tenant"], r["user_id"]) for r in billable} == {("summarize", "acme", "u-1")}
    assert len({r["response_id"] for r in billable}) == _PROVIDER_CALLS
    rollup = storage.query_text("SELECT sum(calls) AS calls FROM rollup_hourly")[0]["calls"]
    assert rollup == _PROVIDER_CALLS
    # and none of the requests carried our baggage to the provider
    for request in stand_in.stand_in.requests:
        value = request["headers"].get("baggage", "")
        assert not [m for m in value.split(",") if m and is_attribution_key(unquote(m.split("=", 1)[0].strip()))]
