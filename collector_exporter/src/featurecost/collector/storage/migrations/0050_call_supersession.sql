-- One provider call, one bill, whatever else is instrumented (issue #13). Spans of one trace
-- that report the same provider response id are one call: the attributed span counts, the
-- others are stored as superseded and counted by no report or rollup (see reconcile.py).
--
-- response_id     the provider's response id (gen_ai.response.id and aliases), '' if none
-- superseded_by   span id of the span that counts for this call; '' while this row counts
-- rollup_sign     what this inserted row adds to the rollups: 1 a counted call, 0 a row
--                 stored already superseded, -1 a re-insert of an earlier counted row that is
--                 now superseded (ReplacingMergeTree keeps the re-insert, the views withdraw
--                 the earlier +1). Append-only: no row is ever mutated or deleted.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS response_id String DEFAULT '';
ALTER TABLE calls ADD COLUMN IF NOT EXISTS superseded_by String DEFAULT '';
ALTER TABLE calls ADD COLUMN IF NOT EXISTS rollup_sign Int8 DEFAULT 1;

-- Withdrawals need signed counters (sums are exact; every re-aggregation nets them out).
ALTER TABLE rollup_hourly MODIFY COLUMN calls SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_hourly MODIFY COLUMN unpriced_calls SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_hourly MODIFY COLUMN input_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_hourly MODIFY COLUMN output_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_hourly MODIFY COLUMN cache_read_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_hourly MODIFY COLUMN cache_write_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_hourly MODIFY COLUMN reasoning_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_actions MODIFY COLUMN calls SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_actions MODIFY COLUMN unpriced_calls SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_actions MODIFY COLUMN input_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_actions MODIFY COLUMN output_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_actions MODIFY COLUMN cache_read_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_actions MODIFY COLUMN cache_write_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_actions MODIFY COLUMN reasoning_tokens SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_sessions MODIFY COLUMN calls SimpleAggregateFunction(sum, Int64);
ALTER TABLE rollup_sessions MODIFY COLUMN unpriced_calls SimpleAggregateFunction(sum, Int64);

-- The *_from_calls views (0021, 0023) add every inserted row once; these add (rollup_sign - 1)
-- times the row for the rare rows that do not count as one call, so the net is rollup_sign.
-- Separate views rather than rewritten ones: migrations only add, and a counted row (the
-- common case) is filtered out here before any aggregation.
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_hourly_supersessions TO rollup_hourly AS
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment,
    src.feature AS feature,
    src.tenant AS tenant,
    src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    src.version AS version,
    sum(toInt64(src.rollup_sign) - 1) AS calls,
    sumIf(toInt64(src.rollup_sign) - 1, src.cost_usd IS NULL) AS unpriced_calls,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.input_tokens)) AS input_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.output_tokens)) AS output_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.cache_read_tokens)) AS cache_read_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.cache_write_tokens)) AS cache_write_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.reasoning_tokens)) AS reasoning_tokens,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18)) * (toInt64(src.rollup_sign) - 1)) AS cost_usd,
    sum(ifNull(src.input_cost_usd, toDecimal128(0, 18)) * (toInt64(src.rollup_sign) - 1)) AS input_cost_usd,
    sum(ifNull(src.output_cost_usd, toDecimal128(0, 18)) * (toInt64(src.rollup_sign) - 1)) AS output_cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    toUInt64(0) AS restatements
FROM calls AS src
WHERE src.rollup_sign != 1
GROUP BY hour, environment, feature, tenant, provider, model, version;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_actions_supersessions TO rollup_actions AS
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
    sum(toInt64(src.rollup_sign) - 1) AS calls,
    sumIf(toInt64(src.rollup_sign) - 1, src.cost_usd IS NULL) AS unpriced_calls,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.input_tokens)) AS input_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.output_tokens)) AS output_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.cache_read_tokens)) AS cache_read_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.cache_write_tokens)) AS cache_write_tokens,
    sum((toInt64(src.rollup_sign) - 1) * toInt64(src.reasoning_tokens)) AS reasoning_tokens,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18)) * (toInt64(src.rollup_sign) - 1)) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    min(src.start_time) AS first_call,
    max(src.start_time) AS last_call
FROM calls AS src
WHERE src.rollup_sign != 1
GROUP BY hour, environment, feature, session_id, root_id, tenant, user_id, plan, version, provider, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_sessions_supersessions TO rollup_sessions AS
SELECT
    toMonday(src.start_time) AS week,
    src.environment AS environment,
    src.feature AS feature,
    src.session_id AS session_id,
    sum(toInt64(src.rollup_sign) - 1) AS calls,
    sumIf(toInt64(src.rollup_sign) - 1, src.cost_usd IS NULL) AS unpriced_calls,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18)) * (toInt64(src.rollup_sign) - 1)) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd
FROM calls AS src
WHERE src.rollup_sign != 1
GROUP BY week, environment, feature, session_id
