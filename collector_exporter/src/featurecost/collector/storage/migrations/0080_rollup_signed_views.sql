-- One view per rollup reads `calls`, not two: every insert plans each view that reads the
-- inserted table, and that planning is most of an insert's fixed CPU cost (~3 ms a view on
-- chDB: a one-row insert took ~29 ms with six views on calls, ~20 ms with three), which a
-- batch pays whatever its size -- sparse LLM traffic pays it per handful of calls.
--
-- *_from_calls (0021, 0023) added every row once and *_supersessions (0050) added
-- (rollup_sign - 1) times the rows that do not count as one call; the *_signed views add
-- rollup_sign times every row, the same sums in one pass (the rows they write, grouped the same
-- way, hold the net of what the two wrote). Rows with rollup_sign 0 still write their group
-- with zero sums, as the pair netted them, and still move first_call/last_call as before.
--
-- The old views are dropped before the new ones exist: a row another collector inserts into
-- the same server in between reaches no rollup (`rollup_drift` shows it, `rebuild_rollups`
-- re-derives the month from `calls FINAL`, docs/reports.md); the other order would count it
-- twice. The embedded engine has one writer, which applies migrations before it inserts.
DROP VIEW IF EXISTS rollup_hourly_supersessions;
DROP VIEW IF EXISTS rollup_hourly_from_calls;
DROP VIEW IF EXISTS rollup_actions_supersessions;
DROP VIEW IF EXISTS rollup_actions_from_calls;
DROP VIEW IF EXISTS rollup_sessions_supersessions;
DROP VIEW IF EXISTS rollup_sessions_from_calls;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_hourly_signed TO rollup_hourly AS
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment,
    src.feature AS feature,
    src.tenant AS tenant,
    src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    src.version AS version,
    sum(toInt64(src.rollup_sign)) AS calls,
    sumIf(toInt64(src.rollup_sign), src.cost_usd IS NULL) AS unpriced_calls,
    sum(toInt64(src.rollup_sign) * toInt64(src.input_tokens)) AS input_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.output_tokens)) AS output_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.cache_read_tokens)) AS cache_read_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.cache_write_tokens)) AS cache_write_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.reasoning_tokens)) AS reasoning_tokens,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18)) * toInt64(src.rollup_sign)) AS cost_usd,
    sum(ifNull(src.input_cost_usd, toDecimal128(0, 18)) * toInt64(src.rollup_sign)) AS input_cost_usd,
    sum(ifNull(src.output_cost_usd, toDecimal128(0, 18)) * toInt64(src.rollup_sign)) AS output_cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    toUInt64(0) AS restatements
FROM calls AS src
GROUP BY hour, environment, feature, tenant, provider, model, version;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_actions_signed TO rollup_actions AS
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
    sum(toInt64(src.rollup_sign)) AS calls,
    sumIf(toInt64(src.rollup_sign), src.cost_usd IS NULL) AS unpriced_calls,
    sum(toInt64(src.rollup_sign) * toInt64(src.input_tokens)) AS input_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.output_tokens)) AS output_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.cache_read_tokens)) AS cache_read_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.cache_write_tokens)) AS cache_write_tokens,
    sum(toInt64(src.rollup_sign) * toInt64(src.reasoning_tokens)) AS reasoning_tokens,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18)) * toInt64(src.rollup_sign)) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    min(src.start_time) AS first_call,
    max(src.start_time) AS last_call
FROM calls AS src
GROUP BY hour, environment, feature, session_id, root_id, tenant, user_id, plan, version, provider, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_sessions_signed TO rollup_sessions AS
SELECT
    toMonday(src.start_time) AS week,
    src.environment AS environment,
    src.feature AS feature,
    src.session_id AS session_id,
    sum(toInt64(src.rollup_sign)) AS calls,
    sumIf(toInt64(src.rollup_sign), src.cost_usd IS NULL) AS unpriced_calls,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18)) * toInt64(src.rollup_sign)) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd
FROM calls AS src
GROUP BY week, environment, feature, session_id
