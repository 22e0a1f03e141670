"""Budgets: spend per scope and period against limits, alerts, and the decision API."""
