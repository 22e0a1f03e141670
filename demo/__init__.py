"""The demo: a sample SaaS app, a local stand-in for LLM providers, and the script
that runs them end to end against a real collector (``make demo``)."""
