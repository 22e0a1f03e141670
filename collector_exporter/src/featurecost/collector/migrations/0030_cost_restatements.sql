-- Budgets read re-pricing deltas from cost_restatements. The pricing stage owns that
-- table (see the restatement contract); IF NOT EXISTS keeps this a no-op when its
-- migration created it first, and lets budget queries run when it has not (yet).
-- Append-only: one row per delta, same dimension columns as calls.
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
