-- A call stored unpriced (unknown model) and priced later by `prices reprice` is no longer
-- unpriced: its restatement row (previous_cost_usd NULL, cost_usd set) takes the call back
-- out of unpriced_calls in every rollup, as the restatement views (0021, 0023) already add its
-- cost. unpriced_calls is signed since 0050. Separate views: migrations only add, and only
-- the rare pricing-later restatements reach them.
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_hourly_priced_later TO rollup_hourly AS
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment,
    src.feature AS feature,
    src.tenant AS tenant,
    src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    src.version AS version,
    toInt64(0) AS calls,
    -toInt64(count()) AS unpriced_calls,
    toInt64(0) AS input_tokens,
    toInt64(0) AS output_tokens,
    toInt64(0) AS cache_read_tokens,
    toInt64(0) AS cache_write_tokens,
    toInt64(0) AS reasoning_tokens,
    toDecimal128(0, 18) AS cost_usd,
    toDecimal128(0, 18) AS input_cost_usd,
    toDecimal128(0, 18) AS output_cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    toUInt64(0) AS restatements
FROM cost_restatements AS src
WHERE src.previous_cost_usd IS NULL AND src.cost_usd IS NOT NULL
GROUP BY hour, environment, feature, tenant, provider, model, version;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_actions_priced_later TO rollup_actions AS
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment,
    src.feature AS feature,
    src.session_id AS session_id,
    src.root_id AS root_id,
    src.tenant AS tenant,
    src.user_id AS user_id,
    src.plan AS plan,
    src.version AS version,
    src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    toInt64(0) AS calls,
    -toInt64(count()) AS unpriced_calls,
    toInt64(0) AS input_tokens,
    toInt64(0) AS output_tokens,
    toInt64(0) AS cache_read_tokens,
    toInt64(0) AS cache_write_tokens,
    toInt64(0) AS reasoning_tokens,
    toDecimal128(0, 18) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    min(src.start_time) AS first_call,
    max(src.start_time) AS last_call
FROM cost_restatements AS src
WHERE src.previous_cost_usd IS NULL AND src.cost_usd IS NOT NULL
GROUP BY hour, environment, feature, session_id, root_id, tenant, user_id, plan, version, provider, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_sessions_priced_later TO rollup_sessions AS
SELECT
    toMonday(src.start_time) AS week,
    src.environment AS environment,
    src.feature AS feature,
    src.session_id AS session_id,
    toInt64(0) AS calls,
    -toInt64(count()) AS unpriced_calls,
    toDecimal128(0, 18) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd
FROM cost_restatements AS src
WHERE src.previous_cost_usd IS NULL AND src.cost_usd IS NOT NULL
GROUP BY week, environment, feature, session_id;
