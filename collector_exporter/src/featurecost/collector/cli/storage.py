"""``featurecost storage``: schema tools for operators (the cluster DDL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from featurecost.collector.storage.cluster_ddl import (
    DEFAULT_CLUSTER,
    DEFAULT_DATABASE,
    ClusterDDLError,
    cluster_ddl,
    render,
)

storage_app = typer.Typer(help="Schema tools: ClickHouse cluster DDL generated from the migrations.")


@storage_app.command("cluster-ddl")
def cluster_ddl_command(
    cluster: Annotated[
        str, typer.Option(help="Cluster name from remote_servers; the default leaves the {cluster} macro.")
    ] = DEFAULT_CLUSTER,
    database: Annotated[str, typer.Option(help="Database to create the tables in.")] = DEFAULT_DATABASE,
    since_version: Annotated[
        int, typer.Option(help="Only migrations after this version (for an upgrade; 0 = everything).")
    ] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the schema as Replicated*MergeTree + Distributed tables, ON CLUSTER.

    Run it with `clickhouse client --multiquery < cluster.sql` once, then point every
    collector at the cluster (`--storage http://...:8123/DATABASE`).
    """
    try:
        text = render(cluster_ddl(cluster, database, since_version))
    except ClusterDDLError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)
