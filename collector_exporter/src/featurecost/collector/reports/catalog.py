"""What the stored data contains: environments and their features.

An empty report is ambiguous (a typo in ``--env prod``? a quiet week? a feature renamed?);
the catalog lets the CLI say which, and gives the web page its environment picker.
"""

from __future__ import annotations

from typing import Any

from featurecost.collector.storage.client import Storage

_PACKAGE = "featurecost.collector.reports"
ALL_ENVIRONMENTS = ("all", "*")


def catalog(storage: Storage) -> dict[str, Any]:
    """``{"environments": [{"name", "calls", "last_seen", "features": [...]}, ...]}``, busiest first."""
    environments: dict[str, dict[str, Any]] = {}
    for row in storage.query_named(_PACKAGE, "catalog"):
        entry = environments.setdefault(
            row["environment"], {"name": row["environment"], "calls": 0, "last_seen": None, "features": []}
        )
        entry["calls"] += int(row["calls"])
        entry["features"].append(row["feature"])
        last = row["last_seen"].isoformat()
        entry["last_seen"] = max(entry["last_seen"] or last, last)
    ordered = sorted(environments.values(), key=lambda e: (-e["calls"], e["name"]))
    return {"environments": ordered}


def empty_hint(known: dict[str, Any], environment: str, feature: str = "") -> str:
    """Why a report came back empty, in terms of what does exist."""
    environments = {e["name"]: e for e in known["environments"]}
    if not environments:
        return "no calls stored yet: is the app exporting to this collector?"
    if environment not in ALL_ENVIRONMENTS and environment not in environments:
        return f"no calls in environment {environment} — seen: {', '.join(environments)}"
    scope = list(environments.values()) if environment in ALL_ENVIRONMENTS else [environments[environment]]
    features = sorted({f for e in scope for f in e["features"]})
    if feature and feature not in features:
        return f"unknown feature {feature} — known: {', '.join(features)}"
    last = max(e["last_seen"] for e in scope)
    return f"no calls in environment {environment} in this window (last call in the hour of {last[:16]} UTC)"
