"""A ClickHouse-HTTP-compatible server backed by chDB, for testing the ``http(s)://`` storage
path without a ClickHouse server (Debian ships 18.16, which clickhouse-connect rejects).

It is the collector's own engine face (``featurecost.collector.storage.engine_http``, what worker
0 serves to the other workers on embedded storage), run as its own process without a secret:
chDB hosts one data path per process.

``python -m testsupport.clickhouse_http --port 8123 --path /tmp/ch``
"""

from __future__ import annotations

import argparse
from http.server import ThreadingHTTPServer

from featurecost.collector.storage.client import Storage
from featurecost.collector.storage.engine_http import engine_handler


def serve(port: int, path: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), engine_handler(Storage(f"chdb://{path}"), secret=None))
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="chDB data directory")
    args = parser.parse_args()
    server = serve(args.port, args.path)
    print(f"clickhouse-http listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
