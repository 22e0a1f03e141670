"""A ClickHouse-HTTP-compatible endpoint backed by chDB, for testing the ``http(s)://``
storage path without a ClickHouse server (Debian ships 18.16, which clickhouse-connect
rejects).

It speaks the part of the ClickHouse HTTP interface clickhouse-connect uses:

- ``GET /ping`` → ``Ok.``;
- ``GET``/``POST /?query=…`` with the statement in the ``query`` parameter (or a form field: large
  bind parameters come as a ``multipart/form-data`` body), the body,
  or both (ClickHouse concatenates them); ``param_<name>`` query parameters; the
  result in the statement's trailing ``FORMAT`` (``Native`` for clickhouse-connect's
  selects) or ``default_format``; ``X-ClickHouse-Format``/``-Timezone``/``-Query-Id``/
  ``-Summary`` response headers;
- inserts: ``INSERT INTO t (cols) FORMAT Native`` then the data, in the body or after
  a ``query`` parameter, request ``Content-Encoding`` lz4/zstd/gzip, chunked bodies;
  per-request settings (``insert_deduplication_token`` …) become the insert's
  ``SETTINGS`` clause, so insert de-duplication behaves as on a server;
- errors: HTTP 500, the ClickHouse message as the body, ``X-ClickHouse-Exception-Code``.

Run it as its own process (chDB hosts one data path per process):
``python -m testsupport.clickhouse_http --port 8123 --path /tmp/ch``.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import re
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
from clickhouse_connect.driver._backend.chdb_backend import _decompress
from clickhouse_connect.driver.compression import _require_lz4, _require_zstd

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
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ChdbHttp:
    def __init__(self, path: str) -> None:
        self.connection = chdb.connect(path)  # type: ignore[no-untyped-call]
        self.lock = threading.Lock()

    def run(self, sql: str, fmt: str, params: dict[str, str], database: str = "default") -> bytes:
        with self.lock:
            self.connection.query(f"USE `{database.replace('`', '')}`", "TabSeparated")
            result = self.connection.query(sql, fmt, params=params)
        data = result.bytes() if result is not None else b""
        return data or b""

    def insert(self, head: str, fmt: str, data: bytes, settings: dict[str, str], database: str) -> None:
        clause = ", ".join(f"{k} = {_quote(v)}" for k, v in settings.items() if _SETTING_NAME.match(k))
        with tempfile.NamedTemporaryFile(suffix=".data", delete=False) as tmp:
            tmp.write(data)
        try:
            sql = f"{head} FROM INFILE {_quote(tmp.name)}{' SETTINGS ' + clause if clause else ''} FORMAT {fmt}"
            self.run(sql, "TabSeparated", {}, database)
        finally:
            os.unlink(tmp.name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: ChdbHttp

    def log_message(self, format: str, *args: Any) -> None:
        pass

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

    def _handle(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") == "/ping":
            self._send(200, b"Ok.\n")
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
                self.engine.insert(insert.group(1).decode(), insert.group(2).decode(), data, settings, database)
                summary = {"written_rows": "0", "written_bytes": str(len(data))}
                self._send(200, b"", {**headers, "X-ClickHouse-Summary": json.dumps(summary)})
                return
            sql = (query + b"\n" + body if query and body else query or body).decode()
            match = _TRAILING_FORMAT.search(sql)
            fmt = match.group(1) if match else params.get("default_format", "TabSeparated")
            if match:
                sql = sql[: match.start()]
            out = self.engine.run(sql, fmt, bind, database)
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


def serve(port: int, path: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    Handler.engine = ChdbHttp(path)
    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="chDB data directory")
    args = parser.parse_args()
    server = serve(args.port, args.path)
    print(f"clickhouse-http listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
