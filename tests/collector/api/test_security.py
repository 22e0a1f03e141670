"""The API port locked as an operator exposing it expects: TLS, read and admin tokens
(probes open, /metrics configurable), no cross-site writes, a body limit on every
route — against a real collector process, with the real budget guard as a client."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from featurecost.collector.storage.usage_import import MAX_ERRORS, MAX_ROWS, UsageImportError, parse_usage_csv
from featurecost.instrumentation.guard import Guard
from tests.collector.api.headless import rendered_dom
from testsupport.collector import start_clickhouse_http
from testsupport.harness import Collector, start_collector
from testsupport.servers import serve_in_thread

CSV = "tenant,period,revenue_usd\nacme,2026-11,100\n"
READ, ADMIN = "read-t0k", "admin-t0k"


@dataclass
class Locked:
    collector: Collector
    ca: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.collector.api_url, verify=self.context, headers=headers, timeout=10)

    @property
    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Locked]:
    tmp = tmp_path_factory.mktemp("api-security")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_pem, key_pem, ca_pem = tmp / "cert.pem", tmp / "key.pem", tmp / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(key_pem))
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    args = ["--tls-cert", str(cert_pem), "--tls-key", str(key_pem), "--api-token", READ, "--admin-token", ADMIN]
    collector = start_collector(tmp / "data", tmp / "logs", args, ca=ca_pem, api_token=READ)
    yield Locked(collector, ca_pem)
    assert collector.process.stop() == 0, collector.process.log()


READ_PATHS = (
    "/api/v1/status",
    "/metrics",
    "/api/v1/reports/feature-costs",
    "/api/v1/reports/tenants",
    "/api/v1/budgets/decision?feature=f",
    "/api/v1/budgets/status",
)


def test_probes_are_open_and_every_read_needs_the_token(locked: Locked) -> None:
    with locked.client() as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/readyz").status_code == 200
        assert anonymous.get("/").status_code == 200  # the page's static files hold no data
        for path in READ_PATHS:
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Bearer")
    with locked.client("wrong") as wrong:
        assert wrong.get("/api/v1/status").status_code == 401
    for token in (READ, ADMIN):
        with locked.client(token) as reader:
            for path in READ_PATHS:
                assert reader.get(path).status_code in (200, 404), path  # 404: no budgets file
            assert reader.get("/api/v1/status").status_code == 200
    with httpx.Client(base_url=locked.collector.api_url, verify=locked.context) as lower:
        assert lower.get("/api/v1/status", headers={"authorization": f"bearer {READ}"}).status_code == 200


def test_the_api_port_speaks_only_tls(locked: Locked) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{locked.collector.api_port}/api/v1/status", timeout=5)


def test_writes_need_the_admin_token_and_a_same_origin_caller(locked: Locked) -> None:
    path = "/api/v1/import/usage"
    with locked.client() as anonymous:
        assert anonymous.post(path, content=CSV).status_code == 401
        assert anonymous.post("/api/v1/rollups/rebuild?month=202611").status_code == 401
    with locked.client(READ) as reader:
        assert reader.post(path, content=CSV).status_code == 401
    with locked.client(ADMIN) as admin:
        evil = admin.post(path, content=CSV, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403
        assert "cross-origin" in evil.json()["error"]
        fetch = admin.post(path, content=CSV, headers={"Sec-Fetch-Site": "cross-site"})
        assert fetch.status_code == 403
        own = f"https://127.0.0.1:{locked.collector.api_port}"
        assert admin.post(path, content=CSV, headers={"Origin": own}).json() == {"imported": 1}
        assert admin.post(path, content=CSV).json() == {"imported": 1}  # the CLI sends no Origin


def test_every_route_has_a_body_limit(locked: Locked) -> None:
    big = b"tenant,period,revenue_usd\n" + b"acme,2026-11,1\n" * (9 * 1024 * 1024 // 14)
    with locked.client(ADMIN) as admin:
        assert admin.post("/api/v1/import/usage", content=big).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(9):
                yield b"x" * (1024 * 1024)

        assert admin.post("/api/v1/import/usage", content=chunks()).status_code == 413
        assert admin.request("GET", "/api/v1/status", content=big).status_code == 413


def test_the_guard_sends_the_api_token_from_the_environment(locked: Locked, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(locked.ca))  # urllib's default context: trust the test CA
    monkeypatch.setenv("FEATURECOST_BUDGET_API", locked.collector.api_url)
    scope = {"feature": "f", "tenant": "t", "user": "", "environment": "production"}
    monkeypatch.delenv("FEATURECOST_API_TOKEN", raising=False)
    without = Guard.from_env().decision(scope)
    assert without.source == "fail-open"
    assert "401" in without.details["error"]
    monkeypatch.setenv("FEATURECOST_API_TOKEN", READ)
    decision = Guard.from_env().decision(scope)
    assert (decision.source, decision.verdict) == ("collector", "allow")


@pytest.mark.slow
def test_a_page_on_another_origin_cannot_write_through_a_browser(tmp_path: Path) -> None:
    # The default loopback collector has no tokens: only the origin check stands between
    # any web page its user opens and the write endpoints. Real Chromium, real collector.
    clickhouse = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs")
    collector = start_collector(tmp_path / "data", tmp_path / "logs", ["--storage", clickhouse.dsn])
    attack = f"""<!doctype html><body data-ready="false"><script>
      fetch("{collector.api_url}/api/v1/import/usage?source=evil", {{
        method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
        body: "tenant,period,revenue_usd\\nacme,2026-11,999999\\n",
      }}).catch(() => null).finally(() => {{ document.body.dataset.ready = "done"; }});
    </script></body>"""

    async def page(request: Request) -> Response:
        return HTMLResponse(attack)

    try:
        with serve_in_thread(Starlette(routes=[Route("/", page)])) as evil:
            rendered_dom(f"{evil}/")
        assert collector.status()["stored_calls"] == 0  # the collector is up and answering
        client = clickhouse.client()
        try:
            imported = client.query("SELECT count() FROM product_usage").result_rows[0][0]
        finally:
            client.close()
        assert imported == 0
        # the same request from a non-browser client (no Origin) is a normal, local write
        response = httpx.post(f"{collector.api_url}/api/v1/import/usage", content=CSV, timeout=10)
        assert response.json() == {"imported": 1}
    finally:
        assert collector.process.stop() == 0, collector.process.log()
        clickhouse.process.stop()


def test_a_usage_import_is_bounded_in_rows_and_reported_problems() -> None:
    # validated rows cost ~1.4 KB each: 8 MiB of CSV was ~0.7 GB of memory
    line = "acme,2026-11,100\n"
    with pytest.raises(UsageImportError) as too_many:
        parse_usage_csv("tenant,period,revenue_usd\n" + line * (MAX_ROWS + 1))
    assert [e.message for e in too_many.value.errors] == [f"more than {MAX_ROWS} rows: split the file"]
    assert len(parse_usage_csv("tenant,period,revenue_usd\n" + line * MAX_ROWS)) == MAX_ROWS
    with pytest.raises(UsageImportError) as bad:
        parse_usage_csv("tenant,period,revenue_usd\n" + "acme,never,-1\n" * 1000)
    assert len(bad.value.errors) <= MAX_ERRORS + 2
    assert bad.value.errors[-1].message == f"stopped after {MAX_ERRORS} problems"


def test_the_image_healthcheck_probes_a_tls_api(locked: Locked) -> None:
    dockerfile = (Path(__file__).resolve().parents[3] / "deploy" / "Dockerfile").read_text()
    command = json.loads(re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", dockerfile, re.DOTALL).group(1))  # type: ignore[union-attr]
    assert command[0] == "python"
    probe = [sys.executable, *command[1:-1], command[-1].replace(":8787/", f":{locked.collector.api_port}/")]
    env = {**os.environ, "FEATURECOST_TLS_CERT": "/etc/featurecost/tls.crt"}
    done = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
