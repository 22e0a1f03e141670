"""The README's install path on a clean machine: both distributions built as wheels, each
installed into its own fresh venv with nothing else (no dev requirements), an existing app
run under ``opentelemetry-instrument`` with exactly the README's variables, and the priced
per-feature report read from the running collector with its own CLI.

The dev venv has every optional package (gRPC exporters, googleapis-common-protos, the
instrumentation next to the collector), so only fresh venvs show a missing dependency.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_end_to_end import expected_by_feature
from testsupport.harness import STAND_IN_ENDPOINTS, Collector, StandIn, free_port, spawn_ready, start_stand_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def test_collector_carries_the_same_attribute_names_as_the_instrumentation() -> None:
    # The collector has a copy so it installs without the instrumentation's runtime; a name
    # changed on one side only would make the collector silently miss it.
    original = ROOT / "instrumentation/src/featurecost/instrumentation/attributes.py"
    copy = ROOT / "collector_exporter/src/featurecost/collector/attributes.py"
    assert copy.read_text() == original.read_text(), f"copy {original} over {copy}"


def test_no_collector_module_imports_the_instrumentation() -> None:
    # featurecost-collector does not depend on featurecost-instrumentation: such an import
    # works in the dev venv (both installed) and breaks `pip install featurecost-collector`.
    offenders = []
    for path in (ROOT / "collector_exporter/src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if any(name.startswith("featurecost.instrumentation") for name in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "use featurecost.collector.attributes: " + ", ".join(offenders)


def readme_app_environment() -> dict[str, str]:
    """The variables of the README's ``opentelemetry-instrument`` example, as written there."""
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "opentelemetry-instrument" in b)
    pairs = re.findall(r"^(OTEL_[A-Z_]+)=(\S+) \\$", block, re.M)
    assert pairs, block
    return dict(pairs)


def _pip(venv_dir: Path, *args: str) -> None:
    subprocess.run(
        [str(venv_dir / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path


@dataclass
class Installed:
    wheels: dict[str, Path]
    app_venv: Path
    collector_venv: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheels")
    dist = base / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(dist),
            str(ROOT / "instrumentation"),
            str(ROOT / "collector_exporter"),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    wheels = {w.name.split("-")[0]: w for w in dist.glob("*.whl")}
    assert set(wheels) == {"featurecost_instrumentation", "featurecost_collector"}
    app_venv = _fresh_venv(base / "app-venv")
    _pip(app_venv, f"{wheels['featurecost_instrumentation']}[otlp,openai,anthropic]")
    collector_venv = _fresh_venv(base / "collector-venv")
    _pip(collector_venv, str(wheels["featurecost_collector"]))
    return Installed(wheels, app_venv, collector_venv)


def _installed_names(venv_dir: Path) -> set[str]:
    listing = subprocess.run(
        [str(venv_dir / "bin/python"), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    )
    return {p["name"].lower().replace("_", "-") for p in json.loads(listing.stdout)}


def test_the_collector_installs_without_the_instrumentation_runtime(installed: Installed) -> None:
    names = _installed_names(installed.collector_venv)
    assert "featurecost-collector" in names
    assert not names & {"featurecost-instrumentation", "opentelemetry-instrumentation", "wrapt", "opentelemetry-sdk"}


@pytest.fixture(scope="module")
def running(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, StandIn]]:
    base = tmp_path_factory.mktemp("installed-run")
    otlp_port, api_port, grpc_port = free_port(), free_port(), free_port()
    # the stand-in listens on loopback, which the collector takes for a self-hosted server
    prices = base / "stand-in-prices.yaml"
    prices.write_text(STAND_IN_ENDPOINTS)
    argv = [
        str(installed.collector_venv / "bin/featurecost"), "collector",
        "--data-dir", str(base / "data"), "--prices-file", str(prices),
        "--otlp-http-port", str(otlp_port), "--otlp-grpc-port", str(grpc_port), "--api-port", str(api_port),
    ]  # fmt: skip
    process = spawn_ready("collector", argv, base / "logs", f"http://127.0.0.1:{api_port}/readyz", 120)
    collector = Collector(process, base / "data", otlp_port, api_port, grpc_port)
    stand_in = start_stand_in(base / "logs")
    try:
        yield collector, stand_in
    finally:
        stand_in.process.stop()
        assert collector.process.stop() == 0, collector.process.log()


def test_readme_install_path_prices_an_app_run_under_opentelemetry_instrument(
    installed: Installed, running: tuple[Collector, StandIn], tmp_path: Path
) -> None:
    collector, stand_in = running
    readme_env = readme_app_environment()
    # The README's example points at a host called "collector"; this one listens on loopback.
    readme_env = {k: v.replace("http://collector:4318", collector.otlp_endpoint) for k, v in readme_env.items()}
    assert readme_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == collector.otlp_endpoint
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    # An existing app, copied out of the repository so nothing but the venv provides featurecost.
    (app_dir / "saas_app.py").write_text((ROOT / "demo/app.py").read_text())
    env = {
        "PATH": f"{installed.app_venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FEATURECOST_DEMO_LLM_URL": stand_in.url,  # the app's own setting: where its LLM provider is
        **readme_env,
    }
    completed = subprocess.run(
        [str(installed.app_venv / "bin/opentelemetry-instrument"), "python", "saas_app.py"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "demo app: done" in completed.stdout
    # A clean start: no exporter conflict, no failed export of traces, metrics or logs.
    assert completed.stderr.strip() == "", completed.stderr

    served = stand_in.served()
    collector.wait_for_calls(len(served))
    collector.wait_drained()
    report = subprocess.run(
        [
            str(installed.collector_venv / "bin/featurecost"),
            "report",
            "features",
            "--api",
            collector.api_url,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    rows = {row["feature"]: row for row in json.loads(report.stdout)}
    expected = expected_by_feature(served)
    assert set(rows) == set(expected) == {"support-bot", "summarize-thread", "draft-email"}
    for feature, e in expected.items():
        assert rows[feature]["calls"] == e.calls, feature
        assert Decimal(rows[feature]["cost_usd"]) == e.cost, feature
        assert rows[feature]["unpriced_calls"] == 0, feature
    log = collector.process.log()
    assert "Traceback" not in log, log
    assert f"web page: http://127.0.0.1:{collector.api_port}/" in log
