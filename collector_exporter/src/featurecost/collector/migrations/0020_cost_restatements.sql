-- Restatements (re-pricing) never mutate `calls`: they append delta rows here, with the
-- same dimension columns as `calls`, and the rollups add them through their own
-- materialized views (0021). Spend = calls.cost_usd + sum(cost_delta_usd).
-- IF NOT EXISTS: the pricing side of the project owns restatements and may create the
-- table first; the columns are the shared contract and must stay identical.
CREATE TABLE IF NOT EXISTS cost_restatements
(
    trace_id String,
    span_id String,
    start_time DateTime64(6, 'UTC'),
    environment LowCardinality(String),
    feature LowCardinality(String),
    tenant String,
    user_id String,
    plan LowCardinality(String),
    root_id String,
    session_id String,
    version LowCardinality(String),
    provider LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(String),
    cost_delta_usd Decimal(38, 18),
    price_source LowCardinality(String),
    price_entry LowCardinality(String),
    price_data_version LowCardinality(String),
    reason String,
    restated_at DateTime64(3, 'UTC'),
    restatement_id String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (environment, feature, start_time, trace_id, span_id, restatement_id)
SETTINGS non_replicated_deduplication_window = 10000
