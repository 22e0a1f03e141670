"""Store: calls into ClickHouse through ``clickhouse-connect``.

One DSN selects the engine: ``chdb:///path`` runs ClickHouse in-process (chDB, the
embedded default), ``http(s)://host:8123/db`` talks to a server or cluster. The same
migrations and named queries run on both.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import fields
from decimal import Decimal
from importlib import resources
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.storage.migrations import load_migrations, statements

# Every CallRecord field is a column of ``calls`` (added by the migrations): the record is the list.
CALL_COLUMNS = tuple(f.name for f in fields(CallRecord))

_MONEY_COLUMNS = frozenset(
    {"cost_usd", "input_cost_usd", "output_cost_usd", "client_cost_usd", "cost_delta_vs_client_usd", "gateway_cost_usd"}
)
MONEY_QUANTUM = Decimal("1e-18")  # the Decimal(38, 18) scale of the money columns


DSN_SCHEMES = ("chdb", "http", "https")


def dsn_problem(dsn: str) -> str | None:
    """Why ``dsn`` cannot name a storage, or None. Checked at start: a mistyped DSN must
    stop the collector with a message, not have it acknowledge spans it can never store."""
    parts = urlsplit(dsn)
    if parts.scheme not in DSN_SCHEMES:
        return f"storage DSN {_redacted(dsn)!r}: scheme must be one of {', '.join(DSN_SCHEMES)} (chdb:///path, https://host:8443/db)"
    if parts.scheme == "chdb":
        return None if parts.path else f"storage DSN {dsn!r}: chdb:// needs a path (chdb:///var/lib/featurecost)"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"storage DSN {_redacted(dsn)!r}: {exc}"
    return None if parts.hostname else f"storage DSN {_redacted(dsn)!r}: no host"


def _redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(f":{parts.password}@", ":***@", 1)
    return dsn


def money(value: Decimal | None) -> Decimal | None:
    """``value`` at the scale the money columns store, so comparisons with stored values are exact."""
    return None if value is None else value.quantize(MONEY_QUANTUM)


def load_sql(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text()


class Storage:
    """A clickhouse-connect client plus featurecost's schema and named queries.

    chDB's in-process engine is not safe for concurrent use from several threads,
    so every statement goes through one lock (a server does not need it, but the
    cost is small next to a network round trip).
    """

    def __init__(self, dsn: str, *, lazy: bool = False) -> None:
        """``lazy``: connect on first use instead of now — the collector starts (and
        spools into its WAL) while a ClickHouse server is still unreachable."""
        self.dsn = dsn
        self._lock = threading.RLock()
        self._client: Client | None = None
        self._call_types: list[str] | None = None
        if not lazy:
            self._connect()

    def _connect(self) -> Client:
        with self._lock:
            if self._client is None:
                # clickhouse-connect takes TLS from the port (8443/443) or ``secure``, not
                # the scheme: https://host/db would otherwise be plain HTTP on 8123
                if urlsplit(self.dsn).scheme == "https":
                    self._client = clickhouse_connect.get_client(dsn=self.dsn, secure=True)
                else:
                    self._client = clickhouse_connect.get_client(dsn=self.dsn)
            return self._client

    @property
    def client(self) -> Client:
        return self._client if self._client is not None else self._connect()

    # --- schema ---
    def migrate(self) -> list[str]:
        """Apply migrations not yet applied, in order; return the names applied now."""
        with self._lock:
            self.client.command(
                "CREATE TABLE IF NOT EXISTS featurecost_migrations "
                "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
                "ENGINE = MergeTree ORDER BY version"
            )
            done = {row[0] for row in self.client.query("SELECT version FROM featurecost_migrations").result_rows}
            applied = []
            for migration in load_migrations():
                if migration.version in done:
                    continue
                for statement in statements(migration.sql):
                    self.client.command(statement)
                self.client.insert(
                    "featurecost_migrations",
                    [[migration.version, migration.name]],
                    column_names=["version", "name"],
                )
                applied.append(migration.name)
            self._call_types = None  # the schema may have changed
            return applied

    # --- writes ---
    def insert_calls(self, records: Sequence[CallRecord], dedup_token: str) -> None:
        """Insert one batch; re-inserting the same batch with the same token is a no-op."""
        if not records:
            return
        # Column-oriented: clickhouse-connect writes Native columns, so building columns
        # directly skips its row→column transpose (the costliest step of a big insert).
        columns = [
            [money(v) for v in map(attrgetter(column), records)]
            if column in _MONEY_COLUMNS
            else list(map(attrgetter(column), records))
            for column in CALL_COLUMNS
        ]
        with self._lock:
            self.client.insert(
                "calls",
                columns,
                column_names=CALL_COLUMNS,
                column_oriented=True,
                column_type_names=self._calls_column_types(),
                # Merging a block by the sorting key at insert time (ReplacingMergeTree on calls,
                # AggregatingMergeTree on the rollups its views feed) halves the engine's insert
                # cost, and buys nothing here: the pipeline never inserts a span twice in one
                # batch, the views already aggregate each block, and queries read with FINAL or
                # sum() whatever the parts hold.
                settings={"insert_deduplication_token": dedup_token, "optimize_on_insert": 0},
            )

    def _calls_column_types(self) -> list[str]:
        """The calls table's column types, asked once (clickhouse-connect would ask per insert)."""
        if self._call_types is None:
            rows = self.client.query(
                "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'calls'"
            ).result_rows
            types = {str(name): str(type_name) for name, type_name in rows}
            self._call_types = [types[column] for column in CALL_COLUMNS]
        return self._call_types

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Sequence[object]],
        columns: Sequence[str],
        dedup_token: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert rows into another table of the schema (``cost_restatements``, ``alerts``, ...).

        With ``dedup_token`` a retried insert of the same rows is dropped by ClickHouse.
        """
        if not rows:
            return
        settings = {**(settings or {}), **({"insert_deduplication_token": dedup_token} if dedup_token else {})}
        with self._lock:
            self.client.insert(table, [list(r) for r in rows], column_names=list(columns), settings=settings or None)

    # --- reads ---
    def query_named(self, package: str, name: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run the query in ``<package>/queries/<name>.sql``; rows as dicts."""
        sql = load_sql(f"{package}.queries", f"{name}.sql")
        with self._lock:
            result = self.client.query(sql, parameters=dict(parameters or {}))
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def query_text(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run SQL text the caller assembled from named query files; rows as dicts."""
        with self._lock:
            result = self.client.query(sql, parameters=dict(parameters or {}))
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self.client.command(sql, parameters=dict(parameters or {}))

    def stored_calls(self) -> int:
        return int(self.query_named("featurecost.collector.storage", "stored_calls")[0]["calls"])

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
