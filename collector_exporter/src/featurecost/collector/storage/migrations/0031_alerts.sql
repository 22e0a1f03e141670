-- Alerts raised by the collector's rules. dedupe_key = rule | scope | period | level:
-- the same alert fires once per period per level. Delivery progress is written as a
-- newer row of the same key (ReplacingMergeTree on revision), so read with FINAL.
-- delivered_to lists the webhooks that accepted it: a retry never repeats a delivery.
CREATE TABLE IF NOT EXISTS alerts
(
    dedupe_key String,
    rule LowCardinality(String),
    scope String,
    period String,
    level LowCardinality(String),
    title String,
    message String,
    details String,
    raised_at DateTime64(3, 'UTC'),
    status LowCardinality(String),
    attempts UInt32,
    last_error String,
    delivered_to Array(String),
    delivered_at Nullable(DateTime64(3, 'UTC')),
    revision UInt64
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY dedupe_key
SETTINGS non_replicated_deduplication_window = 10000
