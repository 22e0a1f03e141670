"""API: the collector's HTTP API (reports, prices, budgets, metrics) and the web page."""
