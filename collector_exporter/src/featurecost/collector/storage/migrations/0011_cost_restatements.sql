-- Re-pricing never mutates calls: it appends one delta row per call whose cost changed.
-- Same dimension columns as calls, so the reports helper's rollup MV can group them alike;
-- cost = calls.cost_usd + sum(cost_delta_usd). A call first priced NULL (unknown model) and
-- priced later gets its whole cost as the delta and previous_cost_usd NULL.
-- ReplacingMergeTree on (call, restatement_id) makes re-running the same reprice a no-op even
-- if two runs race; restatement_id is derived from the new price stamp.
CREATE TABLE IF NOT EXISTS cost_restatements
(
    trace_id String,
    span_id String,
    start_time DateTime64(6, 'UTC'),
    environment LowCardinality(String),
    service_name LowCardinality(String),
    feature LowCardinality(String),
    tenant String,
    user_id String,
    plan LowCardinality(String),
    root_id String,
    session_id String,
    version LowCardinality(String),
    operation LowCardinality(String),
    provider LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(String),
    restatement_id String,
    previous_cost_usd Nullable(Decimal(38, 18)),
    cost_usd Nullable(Decimal(38, 18)),
    cost_delta_usd Decimal(38, 18),
    input_cost_delta_usd Decimal(38, 18),
    output_cost_delta_usd Decimal(38, 18),
    price_source LowCardinality(String),
    price_entry LowCardinality(String),
    price_data_version LowCardinality(String),
    unpriced_reason String,
    reason String,
    restated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (environment, feature, toStartOfHour(start_time), trace_id, span_id, restatement_id)
SETTINGS non_replicated_deduplication_window = 10000
