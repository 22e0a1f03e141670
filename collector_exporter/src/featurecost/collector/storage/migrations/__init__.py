"""The schema: numbered SQL files (``NNNN_name.sql``) in this package, applied in order by
``Storage.migrate`` and rewritten for a replicated cluster by ``storage/cluster_ddl.py``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(since_version: int = 0) -> list[Migration]:
    """The packaged migrations with a version above ``since_version``, in order."""
    found = []
    for entry in resources.files(__name__).iterdir():
        match = FILE_NAME.match(entry.name)
        if match and int(match.group(1)) > since_version:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def statements(sql: str) -> list[str]:
    """The statements of a migration file, comments dropped."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [stmt.strip() for stmt in body.split(";") if stmt.strip()]
