"""featurecost collector: OTLP in, priced LLM calls in ClickHouse out.

Pipeline stages are sub-packages named after the stage: ``ingest`` (receivers, WAL) →
``pipeline`` (normalize, de-duplicate, reconcile) → ``pricing`` → ``storage``; ``reports``
and ``budgets`` read the money back through ``api`` and ``cli``.
"""

from featurecost.collector.version import __version__

__all__ = ["__version__"]
