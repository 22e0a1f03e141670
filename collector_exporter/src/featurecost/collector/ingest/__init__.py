"""Ingest: the OTLP receivers (HTTP, gRPC), their shared admission, the write-ahead log and the seen-span set."""
