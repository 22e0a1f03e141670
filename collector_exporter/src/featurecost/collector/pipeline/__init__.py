"""Pipeline: the worker that drains the WAL, normalizes spans into call records, reconciles peers and forwards."""
