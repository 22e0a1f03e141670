"""Store: calls into ClickHouse through ``clickhouse-connect``.

One DSN selects the engine: ``chdb:///path`` runs ClickHouse in-process (chDB, the
embedded default), ``http(s)://host:8123/db`` talks to a server or cluster. The same
migrations and named queries run on both.

Calls go into chDB as an Arrow stream: pyarrow builds each column from the records in C and the
engine parses the stream in native code, from an anonymous in-memory file (``memfd``) — no
Native encoding in Python, no temp file on disk (clickhouse-connect's chDB backend encodes every
insert in Python, writes it to a temp file and runs ``INSERT … FROM INFILE``). Money goes in as
``decimal128(38, 18)`` built straight from the ``Decimal`` values: pyarrow refuses (never
rounds) a value with more than 18 decimal places, and only then are that column's values
quantized as before, so the stored numbers are the same. A server keeps clickhouse-connect's
Native insert (``insert_calls_native``).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from decimal import Decimal
from importlib import resources
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

import chdb
import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

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


_ARROW_SCALARS: dict[str, pa.DataType] = {
    "String": pa.string(),
    "UInt64": pa.uint64(),
    "UInt32": pa.uint32(),
    "Int64": pa.int64(),
    "Int8": pa.int8(),
    "Decimal(38, 18)": pa.decimal128(38, 18),
    "DateTime64(6, 'UTC')": pa.timestamp("us", tz="UTC"),
}


def arrow_type(clickhouse_type: str) -> pa.DataType | None:
    """The Arrow type whose values the engine casts to ``clickhouse_type`` without loss, or None
    for a type this mapping does not know (the insert then goes through clickhouse-connect)."""
    name = clickhouse_type
    for wrapper in ("LowCardinality(", "Nullable("):  # the engine casts into both
        if name.startswith(wrapper):
            name = name[len(wrapper) : -1]
    if name in _ARROW_SCALARS:
        return _ARROW_SCALARS[name]
    if name.startswith("Array(") and name.endswith(")"):
        item = arrow_type(name[6:-1])
        return None if item is None else pa.list_(item)
    if name.startswith("Map(") and name.endswith(")"):
        key, _, value = name[4:-1].partition(", ")
        key_type, value_type = arrow_type(key), arrow_type(value)
        return None if key_type is None or value_type is None else pa.map_(key_type, value_type)
    return None


def _arrow_column(values: list[Any], arrow: pa.DataType, money_column: bool) -> pa.Array:
    if not money_column:
        return pa.array(values, type=arrow)
    try:
        return pa.array(values, type=arrow)  # exact, or ArrowInvalid: never rounded
    except pa.ArrowInvalid:
        return pa.array([money(v) for v in values], type=arrow)


@contextlib.contextmanager
def _in_memory_file(data: pa.Buffer | bytes) -> Iterator[str]:
    """A path the engine can read ``data`` from: an anonymous in-memory file on Linux (memfd),
    a temporary file elsewhere (macOS has no memfd)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("featurecost-calls-insert", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile(suffix=".arrows") as file:
        file.write(memoryview(data))
        file.flush()
        yield file.name


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
        self._call_arrow_types: list[pa.DataType] | None = None
        # chDB: our own handle on the engine clickhouse-connect opened (chDB allows several per
        # process), for Arrow inserts; None on a server
        self._engine: Any = None
        self._embedded = urlsplit(dsn).scheme == "chdb"
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
                if self._embedded:
                    # the same engine path clickhouse-connect resolved (chDB compares paths literally)
                    self._engine = chdb.connect(os.path.realpath(urlsplit(self.dsn).path))  # type: ignore[no-untyped-call]
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
            self._call_types = self._call_arrow_types = None  # the schema may have changed
            return applied

    # --- writes ---
    def insert_calls(self, records: Sequence[CallRecord], dedup_token: str) -> None:
        """Insert one batch; re-inserting the same batch with the same token is a no-op."""
        if not records:
            return
        if self._embedded:
            arrow_types = self._calls_arrow_types()
            if arrow_types is not None:
                self._insert_calls_arrow(records, arrow_types, dedup_token)
                return
        self.insert_calls_native(records, dedup_token)

    def insert_calls_native(self, records: Sequence[CallRecord], dedup_token: str) -> None:
        """``insert_calls`` through clickhouse-connect's Native encoding: a server's path (and,
        in bench/collector_throughput.py, the baseline the chDB Arrow path is measured against)."""
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

    def _insert_calls_arrow(
        self, records: Sequence[CallRecord], arrow_types: list[pa.DataType], dedup_token: str
    ) -> None:
        table = pa.Table.from_arrays(
            [
                _arrow_column(list(map(attrgetter(column), records)), arrow, column in _MONEY_COLUMNS)
                for column, arrow in zip(CALL_COLUMNS, arrow_types, strict=True)
            ],
            names=list(CALL_COLUMNS),
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        stream = sink.getvalue()
        # The Arrow stream goes to the engine through an anonymous in-memory file: no file on
        # disk, and the engine parses it in native code. (chDB's Python() table function reads a
        # pyarrow table in place too, but its reader threads then contend for the GIL with the
        # receivers: measured, it cost more CPU in the collector than it saved.)
        # optimize_on_insert = 0: see insert_calls_native. The deduplication token drops a
        # replayed insert exactly as it drops a replayed Native one.
        # max_threads = max_insert_threads = 1: the embedded engine runs on the collector's own
        # cores, next to the receivers and the worker's Python. Spread over its thread pool, the
        # same insert (parsing the stream, the views on calls) cost about twice the CPU time: on
        # 2 cores, 10k calls 155 → 69 ms of CPU, one call 49 → 22 ms, and less wall time too.
        with _in_memory_file(stream) as path:
            sql = (
                f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) FROM INFILE {_sql_string(path)} "
                f"SETTINGS insert_deduplication_token = {_sql_string(dedup_token)}, optimize_on_insert = 0, "
                "max_threads = 1, max_insert_threads = 1 "
                "FORMAT ArrowStream"
            )
            with self._lock:
                try:
                    self._engine.query(sql)
                except RuntimeError as exc:  # chDB's errors: "Code: N. DB::Exception: ..."
                    raise DatabaseError(str(exc)) from exc

    def _calls_arrow_types(self) -> list[pa.DataType] | None:
        """The calls columns as Arrow types, or None if one has a type ``arrow_type`` does not know."""
        if self._call_arrow_types is None:
            types = [arrow_type(name) for name in self._calls_column_types()]
            if any(t is None for t in types):
                return None
            self._call_arrow_types = [t for t in types if t is not None]
        return self._call_arrow_types

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

    # --- the embedded engine, served to other processes (storage/engine_http.py) ---
    def engine_query(self, sql: str, fmt: str, parameters: Mapping[str, str], database: str = "default") -> bytes:
        """Run ``sql`` in the embedded engine; the result as ClickHouse format ``fmt``."""
        with self._lock, self._in_database(database):
            try:
                result = self._embedded_engine().query(sql, fmt, params=dict(parameters))
            except RuntimeError as exc:  # chDB's errors: "Code: N. DB::Exception: ..."
                raise DatabaseError(str(exc)) from exc
        data = result.bytes() if result is not None else b""
        return data or b""

    def engine_insert(
        self, head: str, fmt: str, data: bytes, settings: Mapping[str, str], database: str = "default"
    ) -> None:
        """``head`` (``INSERT INTO t (cols)``) with ``data`` in format ``fmt``; ``settings``
        (``insert_deduplication_token`` …) as the insert's own, as a server applies them."""
        # one engine thread unless asked otherwise: see _insert_calls_arrow (the engine shares the cores)
        settings = {"max_threads": "1", "max_insert_threads": "1", **settings}
        clause = ", ".join(f"{k} = {_sql_string(v)}" for k, v in settings.items() if _SETTING_NAME.match(k))
        with _in_memory_file(data) as path:
            sql = f"{head} FROM INFILE {_sql_string(path)}{' SETTINGS ' + clause if clause else ''} FORMAT {fmt}"
            self.engine_query(sql, "TabSeparated", {}, database)

    def _embedded_engine(self) -> Any:
        if not self._embedded:
            raise ValueError(f"storage {_redacted(self.dsn)} is not an embedded engine")
        self._connect()
        return self._engine

    @contextlib.contextmanager
    def _in_database(self, database: str) -> Iterator[None]:
        # the engine's session is shared with this storage's own statements (default database)
        if database == "default":
            yield
            return
        engine = self._embedded_engine()
        try:
            engine.query(f"USE {_sql_identifier(database)}")
        except RuntimeError as exc:
            raise DatabaseError(str(exc)) from exc
        try:
            yield
        finally:
            engine.query("USE default")

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
            if self._engine is not None:
                self._engine.close()
                self._engine = None
            if self._client is not None:
                self._client.close()
