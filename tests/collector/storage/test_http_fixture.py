"""The ClickHouse HTTP fixture (testsupport/clickhouse_http.py) where clickhouse-connect's requests
grow large: bind parameters sent as a form (the reconciler's response-id list for a full batch:
without it every such query failed with a syntax error and the pipeline stalled), and inserts of
several compressed blocks (without it only the first block of a large batch was stored while the
collector counted the whole batch as stored)."""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect
import pytest

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


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_an_insert_of_many_compressed_blocks_stores_every_row(tmp_path: Path, compression: str) -> None:
    server = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs")
    client = clickhouse_connect.get_client(dsn=server.dsn, compress=compression)
    try:
        client.command("CREATE TABLE t (x UInt64, s String) ENGINE = MergeTree ORDER BY x")
        # ~25 MB: clickhouse-connect sends it as several blocks, each its own compressed frame
        rows = 50_000
        client.insert("t", [[n, f"{n:0500d}"] for n in range(rows)], column_names=["x", "s"])
        assert client.query("SELECT count(), sum(x) FROM t").result_rows == [(rows, rows * (rows - 1) // 2)]
    finally:
        client.close()
        server.process.stop()
