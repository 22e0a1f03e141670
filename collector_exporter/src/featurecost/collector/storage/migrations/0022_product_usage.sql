-- Product usage and revenue imported with `featurecost import usage FILE.csv`.
-- One row per tenant × period (inclusive dates) × feature; feature = '' is the
-- tenant-level row carrying revenue and active users, feature rows carry usage counts.
-- Re-importing the same tenant/period/feature replaces the earlier row (latest import
-- wins; read with FINAL).
CREATE TABLE IF NOT EXISTS product_usage
(
    tenant String,
    period_start Date,
    period_end Date,
    feature String,
    revenue_usd Decimal(38, 18),
    active_users UInt64,
    usage_count UInt64,
    source String,
    imported_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (tenant, period_start, period_end, feature)
SETTINGS non_replicated_deduplication_window = 10000
