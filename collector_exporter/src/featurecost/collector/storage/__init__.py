"""Storage: the ClickHouse/chDB client, its migrations and the cluster DDL generated from them."""
