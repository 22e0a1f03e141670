"""The ClickHouse HTTP fixture takes bind parameters sent as a form, as clickhouse-connect does once
they are large (the reconciler's response-id list for a full batch): without it every such query
failed with a syntax error and the pipeline stalled on the HTTP path."""

from __future__ import annotations

from pathlib import Path

from testsupport.collector import start_clickhouse_http


def test_large_array_parameters_bind_like_small_ones(tmp_path: Path) -> None:
    server = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs")
    client = server.client()
    try:
        sql = "SELECT count() FROM numbers(1000)\nWHERE toString(number) IN {ids:Array(String)}"
        for size in (5, 2000):  # 2000 ids: form-encoded by clickhouse-connect
            ids = [str(n) for n in range(0, 2 * size, 2)]
            assert client.query(sql, parameters={"ids": ids}).result_rows == [(min(size, 500),)]
    finally:
        client.close()
        server.process.stop()
