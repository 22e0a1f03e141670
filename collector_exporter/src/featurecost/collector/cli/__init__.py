"""CLI: the ``featurecost`` command, one module per command group."""
