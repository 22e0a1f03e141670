"""Grafana dashboards for featurecost (built by ``dashboards.build``)."""
