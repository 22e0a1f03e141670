"""The cluster DDL generated from the migrations, parsed by the real engine.

No ZooKeeper/Keeper here, so Replicated tables cannot be created; every statement is
instead parsed by chDB (``EXPLAIN AST``) and its structure read from the AST and from
``formatQuery``: engines, ZooKeeper paths, the Distributed table's arguments, and the
columns, which must be exactly those of the single-node migration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from featurecost.collector.storage.client import Storage
from featurecost.collector.storage.cluster_ddl import ClusterDDL, ClusterDDLError, cluster_ddl, render
from featurecost.collector.storage.migrations import Migration, load_migrations
from featurecost.collector.storage.migrations import statements as _statements

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    store = Storage(f"chdb://{tmp_path_factory.mktemp('ddl') / 'clickhouse'}")
    try:
        yield store
    finally:
        store.close()


def ast(engine: Storage, statement: str) -> str:
    return "\n".join(row[0] for row in engine.client.query(f"EXPLAIN AST {statement}").result_rows)


def formatted(engine: Storage, statement: str) -> str:
    result = engine.client.query("SELECT formatQuery({q:String})", parameters={"q": statement})
    text: str = result.result_rows[0][0]
    return text


def columns(formatted_create: str) -> str:
    match = re.search(r"\n\(\n(.*?)\n\)\nENGINE", formatted_create, re.DOTALL)
    assert match, formatted_create
    return match.group(1)


def test_every_generated_statement_parses(engine: Storage) -> None:
    statements = cluster_ddl(cluster="prod", database="costs")
    assert statements
    for statement in statements:
        tree = ast(engine, statement)
        assert tree.strip(), statement


def test_tables_become_replicated_local_plus_distributed(engine: Storage) -> None:
    statements = cluster_ddl(cluster="prod", database="costs")
    local = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS costs.calls_local"))
    distributed = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS costs.calls "))
    local_text = formatted(engine, local)
    assert "ON CLUSTER prod" in local_text
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/calls_local', '{replica}')"
        in (local_text)
    )
    assert "replicated_deduplication_window = 10000" in local_text
    assert "non_replicated" not in local_text
    # the columns are exactly the single-node migration's
    (single_node,) = _statements(next(m.sql for m in load_migrations() if m.name == "0001_calls.sql"))
    assert columns(local_text) == columns(formatted(engine, single_node))
    tree = ast(engine, distributed)
    assert "Function Distributed" in tree
    assert "Literal 'prod'" in tree
    assert "Literal 'costs'" in tree
    assert "Literal 'calls_local'" in tree
    # sharded by the sorting key: all copies of one span land on one shard, so FINAL dedups them
    assert "Function cityHash64" in tree
    assert "cityHash64((environment, feature, toStartOfHour(start_time), trace_id, span_id))" in distributed


def test_migrations_are_recorded_once_for_the_collector(engine: Storage) -> None:
    statements = cluster_ddl(cluster="prod", database="costs")
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS costs ON CLUSTER 'prod'"
    bookkeeping = formatted(engine, statements[1])
    assert "/clickhouse/tables/all/{database}/featurecost_migrations" in bookkeeping
    inserts = [s for s in statements if s.startswith("INSERT INTO costs.featurecost_migrations")]
    assert len(inserts) == len(load_migrations())
    assert "SELECT 1, '0001_calls.sql' WHERE 1 NOT IN" in inserts[0]


def test_views_and_alters_are_rewritten(engine: Storage) -> None:
    migrations = [
        Migration(1, "0001_calls.sql", next(m.sql for m in load_migrations() if m.version == 1)),
        Migration(
            20,
            "0020_rollups.sql",
            """
            CREATE TABLE IF NOT EXISTS hourly (hour DateTime, feature LowCardinality(String),
                cost AggregateFunction(sum, Nullable(Decimal(38, 18))))
            ENGINE = AggregatingMergeTree ORDER BY (feature, hour);
            CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_mv TO hourly AS
            SELECT toStartOfHour(start_time) AS hour, feature, sumState(cost_usd) AS cost
            FROM calls GROUP BY hour, feature;
            CREATE VIEW IF NOT EXISTS hourly_costs AS
            SELECT hour, feature, sumMerge(cost) AS cost FROM hourly GROUP BY hour, feature;
            ALTER TABLE calls ADD COLUMN IF NOT EXISTS region LowCardinality(String) DEFAULT ''
            """,
        ),
    ]
    statements = ClusterDDL("prod", "costs").statements(migrations)
    for statement in statements:
        ast(engine, statement)
    mv = next(s for s in statements if "MATERIALIZED VIEW" in s)
    # per shard: reads the shard's raw rows, writes the shard's rollup
    assert "costs.hourly_mv_local ON CLUSTER 'prod' TO costs.hourly_local" in mv
    assert "FROM costs.calls_local" in mv
    view = next(s for s in statements if s.startswith("CREATE VIEW"))
    assert "FROM costs.hourly GROUP BY" in view  # reads across shards through Distributed
    alters = [s for s in statements if s.startswith("ALTER TABLE")]
    assert [a.split(" ON CLUSTER")[0] for a in alters] == ["ALTER TABLE costs.calls_local", "ALTER TABLE costs.calls"]
    assert "ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/hourly_local'" in "\n".join(
        statements
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE MATERIALIZED VIEW v ENGINE = SummingMergeTree ORDER BY a AS SELECT 1 AS a", "TO <table>"),
        ("CREATE TABLE t (a UInt8) ENGINE = Memory", "only *MergeTree"),
        ("CREATE TABLE t (a UInt8) ENGINE = ReplicatedMergeTree ORDER BY a", "single-node engine"),
        ("CREATE TABLE t (a UInt8) ENGINE = MergeTree", "without ORDER BY"),
        ("INSERT INTO t VALUES (1)", "no cluster rewrite"),
    ],
)
def test_unsupported_statements_are_refused(sql: str, message: str) -> None:
    with pytest.raises(ClusterDDLError, match=re.escape(message)):
        ClusterDDL().statements([Migration(99, "0099_x.sql", sql)])


def test_upgrade_from_a_version_knows_the_earlier_tables() -> None:
    latest = max(m.version for m in load_migrations())
    upgrade = cluster_ddl(since_version=latest)
    assert not any(s.startswith("CREATE TABLE IF NOT EXISTS featurecost.calls") for s in upgrade)
    assert not any(s.startswith("INSERT") for s in upgrade)


def test_cli_writes_the_ddl_and_the_committed_file_is_current(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["storage", "cluster-ddl", "--cluster", "prod", "--database", "costs"])
    assert result.exit_code == 0, result.output
    assert result.stdout == render(cluster_ddl("prod", "costs"))
    bad = runner.invoke(app, ["storage", "cluster-ddl", "--database", "no-dashes"])
    assert bad.exit_code != 0
    committed = (ROOT / "deploy" / "clickhouse" / "cluster.sql").read_text()
    assert committed == render(cluster_ddl()), (
        "regenerate: featurecost storage cluster-ddl -o deploy/clickhouse/cluster.sql"
    )


def test_engine_parameters_and_drops(engine: Storage) -> None:
    sql = """
        CREATE TABLE IF NOT EXISTS versions (k String, v UInt64, at DateTime)
        ENGINE = ReplacingMergeTree(at) ORDER BY k;
        CREATE TABLE IF NOT EXISTS sums (k String, a UInt64, b UInt64) ENGINE = SummingMergeTree((a, b)) ORDER BY k;
        CREATE MATERIALIZED VIEW IF NOT EXISTS sums_mv TO sums AS
        SELECT k, v AS a, 1 AS b FROM versions LEFT JOIN versions AS older USING (k);
        DROP VIEW IF EXISTS sums_mv;
        DROP TABLE IF EXISTS sums
    """
    statements = ClusterDDL("prod", "costs").statements([Migration(30, "0030_x.sql", sql)])
    for statement in statements:
        ast(engine, statement)
    text = "\n".join(statements)
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/versions_local', '{replica}', at)" in text
    )
    assert "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/sums_local', '{replica}', (a, b))" in text
    # the trigger table is the shard's part; a joined table is read whole
    assert "FROM costs.versions_local LEFT JOIN costs.versions AS older" in text
    drops = [s for s in statements if s.startswith("DROP")]
    assert drops == [
        "DROP VIEW IF EXISTS costs.sums_mv_local ON CLUSTER 'prod' SYNC",
        "DROP TABLE IF EXISTS costs.sums ON CLUSTER 'prod' SYNC",
        "DROP TABLE IF EXISTS costs.sums_local ON CLUSTER 'prod' SYNC",
    ]
