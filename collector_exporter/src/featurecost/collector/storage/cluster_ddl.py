"""Cluster DDL: the single-node migrations rewritten for a replicated, sharded ClickHouse.

The migrations under ``migrations/`` are written for one node (chDB or one server). A
cluster needs the same schema as ``Replicated*MergeTree`` tables on every shard plus a
``Distributed`` table over them. Generating that from the migrations (instead of keeping a
second hand-written schema) is what keeps the two from drifting apart.

For every ``CREATE TABLE t ... ENGINE = XMergeTree`` the output has

* ``t_local ON CLUSTER``: ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/{database}/t_local',
  '{replica}')`` with the original columns, keys and settings;
* ``t ON CLUSTER``: ``Distributed(cluster, database, t_local, cityHash64(<ORDER BY key>))``.

The application keeps reading and inserting ``t``. Sharding by the hash of the sorting key
sends every copy of a row with the same identity to the same shard, so
``ReplacingMergeTree`` deduplication (and ``FINAL``) stays correct across shards.

Materialized views are per shard: ``CREATE MATERIALIZED VIEW v TO t`` becomes a view on
every node that reads the shard's ``*_local`` source and writes the shard's ``*_local``
target, so rollups are built where the raw rows land and read back through ``t``.
Plain views read the ``Distributed`` tables. ``ALTER TABLE t`` is applied to both ``t_local``
and ``t``.

The bookkeeping table ``featurecost_migrations`` is replicated to every node (one ZooKeeper
path for the whole cluster, no shard macro) and filled with the migrations the DDL contains,
so a collector started against the cluster finds its schema up to date and applies nothing.
"""

from __future__ import annotations

import re

from featurecost.collector.storage.migrations import Migration, load_migrations
from featurecost.collector.storage.migrations import statements as split_statements

DEFAULT_CLUSTER = "{cluster}"
DEFAULT_DATABASE = "featurecost"
LOCAL_SUFFIX = "_local"


class ClusterDDLError(ValueError):
    """A migration statement this generator does not know how to distribute."""


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_IDENT = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
_CREATE_TABLE = re.compile(
    rf"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\.)?{_IDENT}\s*(\(.*)$", re.IGNORECASE | re.DOTALL
)
_CREATE_MV = re.compile(
    rf"^\s*CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\.)?{_IDENT}\s+(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_CREATE_VIEW = re.compile(
    rf"^\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\.)?{_IDENT}\s+(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ALTER_TABLE = re.compile(rf"^\s*ALTER\s+TABLE\s+(?:{_IDENT}\.)?{_IDENT}\s+(.*)$", re.IGNORECASE | re.DOTALL)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w*MergeTree)\b[ \t]*", re.IGNORECASE)
_DROP = re.compile(
    rf"^\s*DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?(?:{_IDENT}\.)?{_IDENT}\s*$", re.IGNORECASE | re.DOTALL
)
_ORDER_BY = re.compile(r"\bORDER\s+BY\s+", re.IGNORECASE)
_MV_TO = re.compile(rf"^TO\s+(?:{_IDENT}\.)?{_IDENT}\s+(.*)$", re.IGNORECASE | re.DOTALL)
_FROM_JOIN = re.compile(rf"\b(FROM|JOIN)\s+(?:{_IDENT}\.)?{_IDENT}", re.IGNORECASE)
_SETTING_RENAMES = {"non_replicated_deduplication_window": "replicated_deduplication_window"}


def _balanced(text: str, start: int) -> int:
    """Index just past the parenthesised group opening at ``text[start]``."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ClusterDDLError("unbalanced parentheses")


def _sorting_key(clauses: str) -> str:
    """The ORDER BY expression of a table's clauses (up to the next clause keyword)."""
    match = _ORDER_BY.search(clauses)
    if not match:
        raise ClusterDDLError("a MergeTree table without ORDER BY cannot be sharded by its key")
    rest = clauses[match.end() :]
    if rest.startswith("("):
        return rest[: _balanced(rest, 0)].strip()
    end = re.search(r"\b(PRIMARY\s+KEY|SAMPLE\s+BY|TTL|SETTINGS|PARTITION\s+BY)\b", rest, re.IGNORECASE)
    return (rest[: end.start()] if end else rest).strip()


class ClusterDDL:
    """Rewrites single-node migration statements into ``ON CLUSTER`` statements."""

    def __init__(self, cluster: str = DEFAULT_CLUSTER, database: str = DEFAULT_DATABASE) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
            raise ClusterDDLError(f"database must be a plain identifier, got {database!r}")
        self.cluster = cluster
        self.database = database
        self.tables: set[str] = set()  # MergeTree tables seen so far: they have a *_local twin
        self.materialized_views: set[str] = set()  # created per shard as *_local

    @property
    def on_cluster(self) -> str:
        return f"ON CLUSTER {_quote(self.cluster)}"

    def name(self, table: str) -> str:
        return f"{self.database}.{table}"

    def local(self, table: str) -> str:
        return f"{self.database}.{table}{LOCAL_SUFFIX}"

    def preamble(self) -> list[str]:
        return [
            f"CREATE DATABASE IF NOT EXISTS {self.database} {self.on_cluster}",
            # One ZooKeeper path for the whole cluster (no {shard}): every node holds every row,
            # so `featurecost collector` on any node sees which migrations are applied.
            f"CREATE TABLE IF NOT EXISTS {self.name('featurecost_migrations')} {self.on_cluster} "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/featurecost_migrations', '{replica}') "
            "ORDER BY version",
        ]

    def statements(self, migrations: list[Migration]) -> list[str]:
        """Everything to run, in order, for the given migrations (preamble included)."""
        out = self.preamble()
        for migration in migrations:
            for statement in split_statements(migration.sql):
                try:
                    out.extend(self.rewrite(statement))
                except ClusterDDLError as exc:
                    raise ClusterDDLError(f"{migration.name}: {exc}") from exc
            out.append(
                f"INSERT INTO {self.name('featurecost_migrations')} (version, name) "
                f"SELECT {migration.version}, {_quote(migration.name)} "
                f"WHERE {migration.version} NOT IN (SELECT version FROM {self.name('featurecost_migrations')})"
            )
        return out

    def rewrite(self, statement: str) -> list[str]:
        if match := _CREATE_TABLE.match(statement):
            return self._create_table(match.group(3), match.group(4))
        if match := _CREATE_MV.match(statement):
            return [self._create_materialized_view(match.group(3), match.group(4))]
        if match := _CREATE_VIEW.match(statement):
            replace = "OR REPLACE " if match.group(1) else ""
            exists = "IF NOT EXISTS " if match.group(2) else ""
            body = self._qualify_sources(match.group(5), local=False)
            return [f"CREATE {replace}VIEW {exists}{self.name(match.group(4))} {self.on_cluster} {body}"]
        if match := _ALTER_TABLE.match(statement):
            table, action = match.group(2), match.group(3)
            targets = [self.local(table), self.name(table)] if table in self.tables else [self.name(table)]
            return [f"ALTER TABLE {target} {self.on_cluster} {action}" for target in targets]
        if match := _DROP.match(statement):
            return self._drop(match.group(1).upper(), bool(match.group(2)), match.group(4))
        head = " ".join(statement.split()[:3])
        raise ClusterDDLError(f"no cluster rewrite for statement starting {head!r}")

    def _create_table(self, table: str, rest: str) -> list[str]:
        columns_end = _balanced(rest, 0)
        columns, clauses = rest[:columns_end], rest[columns_end:]
        engine = _ENGINE.search(clauses)
        if not engine:
            raise ClusterDDLError(f"table {table}: only *MergeTree engines can be replicated")
        kind = engine.group(1)
        if kind.lower().startswith("replicated"):
            raise ClusterDDLError(f"table {table}: migrations must use the single-node engine, got {kind}")
        zk_path = f"/clickhouse/tables/{{shard}}/{{database}}/{table}{LOCAL_SUFFIX}"
        args = [_quote(zk_path), _quote("{replica}")]
        end = engine.end()
        if clauses[end:].startswith("("):  # engine parameters (version column, sum columns...)
            args_end = end + _balanced(clauses[end:], 0)
            if inner := clauses[end + 1 : args_end - 1].strip():
                args.append(inner)
            end = args_end
        replicated = f"ENGINE = Replicated{kind}({', '.join(args)})"
        clauses = clauses[: engine.start()] + replicated + clauses[end:]
        for old, new in _SETTING_RENAMES.items():
            clauses = re.sub(rf"\b{old}\b", new, clauses)
        key = _sorting_key(clauses)
        self.tables.add(table)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.local(table)} {self.on_cluster}\n{columns}\n{clauses.strip()}",
            f"CREATE TABLE IF NOT EXISTS {self.name(table)} {self.on_cluster} AS {self.local(table)}\n"
            f"ENGINE = Distributed({_quote(self.cluster)}, {_quote(self.database)}, "
            f"{_quote(table + LOCAL_SUFFIX)}, cityHash64({key}))",
        ]

    def _create_materialized_view(self, view: str, rest: str) -> str:
        to = _MV_TO.match(rest.strip())
        if not to:
            raise ClusterDDLError(
                f"materialized view {view}: write it as `CREATE MATERIALIZED VIEW {view} TO <table>` "
                "so the cluster DDL can point it at the shard-local table"
            )
        target, body = to.group(2), to.group(3)
        if target not in self.tables:
            raise ClusterDDLError(f"materialized view {view}: target {target} is not a table of the migrations")
        body = self._qualify_sources(body, local=True)
        self.materialized_views.add(view)
        head = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self.local(view)} {self.on_cluster}"
        return f"{head} TO {self.local(target)}\n{body}"

    def _drop(self, kind: str, if_exists: bool, name: str) -> list[str]:
        exists = "IF EXISTS " if if_exists else ""
        if kind == "TABLE" and name in self.tables:
            self.tables.discard(name)
            # the Distributed table first: nothing reads a dropped local table through it
            targets = [self.name(name), self.local(name)]
        elif name in self.materialized_views:
            self.materialized_views.discard(name)
            targets = [self.local(name)]
        else:
            targets = [self.name(name)]
        return [f"DROP {kind} {exists}{target} {self.on_cluster} SYNC" for target in targets]

    def _qualify_sources(self, body: str, local: bool) -> str:
        """Qualify FROM/JOIN tables of the migrations.

        A per-shard materialized view (``local``) is triggered by inserts into its FROM table,
        so that one becomes the shard's ``*_local``; a JOINed table must be seen whole, so it
        stays the Distributed table.
        """

        def replace(match: re.Match[str]) -> str:
            keyword, database, table = match.group(1), match.group(2), match.group(3)
            if database or table not in self.tables:
                return match.group(0)
            shard_local = local and keyword.upper() == "FROM"
            return f"{keyword} {self.local(table) if shard_local else self.name(table)}"

        return _FROM_JOIN.sub(replace, body)


def cluster_ddl(cluster: str = DEFAULT_CLUSTER, database: str = DEFAULT_DATABASE, since_version: int = 0) -> list[str]:
    """The cluster statements for the packaged migrations.

    With ``since_version`` only later migrations are rewritten (an upgrade); the tables of
    the earlier ones are still known, so views and ALTERs over them point at ``*_local``.
    """
    generator = ClusterDDL(cluster, database)
    everything = load_migrations()
    for migration in everything:
        if migration.version <= since_version:
            generator.statements([migration])  # learn its tables; output discarded
    return generator.statements([m for m in everything if m.version > since_version])


HEADER = (
    "-- Generated by `featurecost storage cluster-ddl` from the collector's migrations; do not edit by hand.\n"
    "-- Needs ClickHouse Keeper (or ZooKeeper) and the {cluster}, {shard} and {replica} macros on every node.\n"
    "-- Run once per upgrade: clickhouse client --multiquery < cluster.sql\n\n"
)


def render(statements: list[str]) -> str:
    return HEADER + "".join(f"{statement};\n\n" for statement in statements)
