"""featurecost collector: OTLP in, priced LLM calls in ClickHouse out.

Pipeline stages are modules named after the stage: ``receiver`` → ``wal`` →
``normalize`` → ``pricing`` → ``storage``; ``reports`` reads the money back.
"""

from featurecost.collector.version import __version__

__all__ = ["__version__"]
