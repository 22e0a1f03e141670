"""The embedded engine's ClickHouse HTTP face: how other processes use one chDB.

chDB runs ClickHouse inside one process, which owns the data directory. With
``--workers N`` on embedded storage, worker 0 owns the engine and serves it here, on a
loopback port with a per-run secret; the other workers are ordinary ClickHouse HTTP clients
(``clickhouse-connect``, the path a ClickHouse server takes): they receive, normalize and price
in parallel, and their inserts, reads and migrations run in worker 0's engine, serialized by
the storage lock. Inserts arrive as the Native blocks clickhouse-connect encodes in the
sending worker; the engine parses them in native code from an in-memory file.

It speaks the part of the ClickHouse HTTP interface clickhouse-connect uses:

- ``GET /ping`` → ``Ok.``;
- ``GET``/``POST /?query=…`` with the statement in the ``query`` parameter (or a form field:
  large bind parameters come as a ``multipart/form-data`` body), the body, or both (ClickHouse
  concatenates them); ``param_<name>`` bind parameters; the result in the statement's trailing
  ``FORMAT`` or ``default_format``; ``X-ClickHouse-Format``/``-Timezone``/``-Query-Id``/``-Summary``;
- inserts: ``INSERT INTO t (cols) FORMAT Native`` then the data, in the body or after a
  ``query`` parameter, ``Content-Encoding`` lz4/zstd/gzip, chunked bodies; per-request settings
  (``insert_deduplication_token`` …) become the insert's ``SETTINGS`` clause, so a replayed
  insert is dropped exactly as on a server;
- errors: HTTP 500 with the ClickHouse message and ``X-ClickHouse-Exception-Code`` (the
  pipeline reads them as it reads a server's); a wrong or missing secret: 401, code 516.

The test suite serves the same face from its own process as a ClickHouse server stand-in
(``testsupport/clickhouse_http.py``; Debian's ClickHouse is too old for clickhouse-connect).
"""

from __future__ import annotations

import base64
import email
import email.policy
import hmac
import json
import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from clickhouse_connect.driver._backend.chdb_backend import _decompress
from clickhouse_connect.driver.compression import _require_lz4, _require_zstd

from featurecost.collector.storage.client import Storage

__all__ = ["EngineServer", "engine_handler"]

# URL parameters that are transport, not ClickHouse settings.
_TRANSPORT = frozenset(
    {
        "query", "database", "session_id", "session_timeout", "session_check", "query_id", "compress",
        "decompress", "quota_key", "wait_end_of_query", "default_format", "client_protocol_version", "role",
        "user", "password", "buffer_size", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "enable_http_compression", "cancel_http_readonly_queries_on_client_close",
    }
)  # fmt: skip
_INSERT_HEAD = re.compile(rb"^\s*(INSERT\s+INTO\s+.*?)\s+FORMAT\s+(\w+)[ \t]*(?:\r?\n|$)", re.IGNORECASE | re.DOTALL)
_TRAILING_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_AUTHENTICATION_FAILED = "516"


def _decompress_frames(body: bytes, encoding: str) -> bytes:
    """The whole body: clickhouse-connect compresses each Native block of an insert as its own
    lz4/zstd frame, and a one-shot decompress stops after the first frame — only the first
    block (a few thousand rows) of a large insert would reach the table."""
    if encoding not in ("lz4", "zstd"):
        return _decompress(body, encoding)
    out = []
    while body:
        if encoding == "lz4":
            decompressor: Any = _require_lz4().LZ4FrameDecompressor()  # type: ignore[no-untyped-call]
        else:
            decompressor = _require_zstd().ZstdDecompressor()  # type: ignore[no-untyped-call]
        out.append(decompressor.decompress(body))
        body = decompressor.unused_data
    return b"".join(out)


def _form_fields(content_type: str, body: bytes) -> dict[str, str] | None:
    """The fields of a ``multipart/form-data`` or urlencoded form body, else None."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    if kind != "multipart/form-data":
        return None
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


def _presented_secret(headers: Any) -> str | None:
    """The password of a Basic ``Authorization`` header (clickhouse-connect's way) or the
    ``X-ClickHouse-Key`` header."""
    key = headers.get("x-clickhouse-key")
    if key is not None:
        return str(key)
    scheme, _, value = str(headers.get("authorization", "")).partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value, validate=True).decode().partition(":")[2]
    except ValueError:
        return None


def engine_handler(storage: Storage, secret: str | None) -> type[BaseHTTPRequestHandler]:
    """A request handler serving ``storage``'s embedded engine; ``secret``: the password every
    request must present (None: none, for the test suite's stand-in server)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # clients log their own failures; a line per query would flood the collector's log

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                body = b"".join(chunks)
            else:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
            encoding = self.headers.get("content-encoding", "").strip().lower()
            return _decompress_frames(body, encoding) if encoding and encoding != "identity" else body

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._handle(b"")

        def do_POST(self) -> None:
            self._handle(self._body())

        def _authorized(self) -> bool:
            if secret is None:
                return True
            presented = _presented_secret(self.headers)
            return presented is not None and hmac.compare_digest(presented.encode(), secret.encode())

        def _handle(self, body: bytes) -> None:
            url = urlsplit(self.path)
            if url.path.rstrip("/") == "/ping":
                self._send(200, b"Ok.\n")
                return
            if not self._authorized():
                refusal = (
                    b"Code: 516. DB::Exception: featurecost engine: authentication failed. (AUTHENTICATION_FAILED)"
                )
                self._send(401, refusal, {"X-ClickHouse-Exception-Code": _AUTHENTICATION_FAILED})
                return
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            form = _form_fields(self.headers.get("content-type", ""), body)
            if form is not None:  # clickhouse-connect sends large bind parameters (and the query) as a form
                params.update(form)
                body = b""
            query_id = params.get("query_id") or str(uuid.uuid4())
            bind = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
            settings = {k: v for k, v in params.items() if k not in _TRANSPORT and not k.startswith("param_")}
            query = params.get("query", "").encode()
            database = params.get("database") or "default"
            headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": "UTC"}
            try:
                insert = _INSERT_HEAD.match(query) if query else _INSERT_HEAD.match(body[:65536])
                if insert is not None:
                    data = body if query else body[insert.end() :]
                    storage.engine_insert(insert.group(1).decode(), insert.group(2).decode(), data, settings, database)
                    summary = {"written_rows": "0", "written_bytes": str(len(data))}
                    self._send(200, b"", {**headers, "X-ClickHouse-Summary": json.dumps(summary)})
                    return
                sql = (query + b"\n" + body if query and body else query or body).decode()
                match = _TRAILING_FORMAT.search(sql)
                fmt = match.group(1) if match else params.get("default_format", "TabSeparated")
                if match:
                    sql = sql[: match.start()]
                out = storage.engine_query(sql, fmt, bind, database)
            except Exception as exc:
                message = str(exc)
                code = _ERROR_CODE.search(message)
                self._send(
                    500,
                    message.encode(),
                    {**headers, "X-ClickHouse-Exception-Code": code.group(1) if code else "1000"},
                )
                return
            self._send(200, out, {**headers, "X-ClickHouse-Format": fmt, "X-ClickHouse-Summary": "{}"})

    return Handler


class EngineServer:
    """Serves ``storage``'s engine on ``sock`` (a listening loopback socket) from a thread
    per connection until ``close``."""

    def __init__(self, storage: Storage, sock: socket.socket, secret: str | None) -> None:
        self._server = ThreadingHTTPServer(
            sock.getsockname()[:2], engine_handler(storage, secret), bind_and_activate=False
        )
        self._server.socket.close()
        self._server.socket = sock
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="featurecost-engine-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.socket.getsockname()[1])

    def start(self) -> EngineServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(10)
