-- Rollups: what the reports read instead of scanning `calls`.
--
-- rollup_hourly   one row per hour × environment × feature × tenant × provider × model × version
-- rollup_actions  one row per hour × root action (user action) × model, carrying its session,
--                 tenant, user, plan and version: sessions are rollup_actions grouped by session.
--
-- Both are AggregatingMergeTree with SimpleAggregateFunction(sum|min|max) columns, fed by
-- one materialized view from `calls` and one from `cost_restatements` (deltas only add to
-- the *_restated columns and cost_usd, never to call counts). Queries always re-aggregate
-- (GROUP BY ... sum()), so unmerged parts never show up as extra rows.
--
-- Never double count: a re-delivered batch is dropped by `calls`' insert deduplication
-- (insert_deduplication_token per WAL range) and ClickHouse then skips the views too; the
-- rollups keep their own non_replicated_deduplication_window for re-inserted view blocks.
-- A single span arriving again inside a *different* batch is collapsed by `calls FINAL`
-- but would be summed twice here: `rollup_drift` detects it and `rebuild_rollups`
-- re-derives a month from `calls FINAL` (see docs/reports.md).
--
-- Unpriced calls stay visible: cost_usd sums priced calls only, unpriced_calls counts the
-- NULL-cost calls (never summed as $0).
CREATE TABLE IF NOT EXISTS rollup_hourly
(
    hour DateTime('UTC'),
    environment LowCardinality(String),
    feature LowCardinality(String),
    tenant String,
    provider LowCardinality(String),
    model LowCardinality(String),
    version LowCardinality(String),
    calls SimpleAggregateFunction(sum, UInt64),
    unpriced_calls SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    input_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    output_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    restated_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    restatements SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (environment, feature, hour, tenant, provider, model, version)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_hourly_from_calls TO rollup_hourly AS
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment,
    src.feature AS feature,
    src.tenant AS tenant,
    src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    src.version AS version,
    toUInt64(count()) AS calls,
    toUInt64(countIf(src.cost_usd IS NULL)) AS unpriced_calls,
    sum(src.input_tokens) AS input_tokens,
    sum(src.output_tokens) AS output_tokens,
    sum(src.cache_read_tokens) AS cache_read_tokens,
    sum(src.cache_write_tokens) AS cache_write_tokens,
    sum(src.reasoning_tokens) AS reasoning_tokens,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18))) AS cost_usd,
    sum(ifNull(src.input_cost_usd, toDecimal128(0, 18))) AS input_cost_usd,
    sum(ifNull(src.output_cost_usd, toDecimal128(0, 18))) AS output_cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    toUInt64(0) AS restatements
FROM calls AS src
GROUP BY hour, environment, feature, tenant, provider, model, version;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_hourly_from_restatements TO rollup_hourly AS
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment,
    src.feature AS feature,
    src.tenant AS tenant,
    src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    src.version AS version,
    toUInt64(0) AS calls,
    toUInt64(0) AS unpriced_calls,
    toUInt64(0) AS input_tokens,
    toUInt64(0) AS output_tokens,
    toUInt64(0) AS cache_read_tokens,
    toUInt64(0) AS cache_write_tokens,
    toUInt64(0) AS reasoning_tokens,
    sum(src.cost_delta_usd) AS cost_usd,
    toDecimal128(0, 18) AS input_cost_usd,
    toDecimal128(0, 18) AS output_cost_usd,
    sum(src.cost_delta_usd) AS restated_usd,
    toUInt64(count()) AS restatements
FROM cost_restatements AS src
GROUP BY hour, environment, feature, tenant, provider, model, version;

CREATE TABLE IF NOT EXISTS rollup_actions
(
    hour DateTime('UTC'),
    environment LowCardinality(String),
    feature LowCardinality(String),
    session_id String,
    root_id String,
    tenant String,
    user_id String,
    plan LowCardinality(String),
    version LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    calls SimpleAggregateFunction(sum, UInt64),
    unpriced_calls SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    restated_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    first_call SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_call SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (environment, feature, hour, session_id, root_id, tenant, user_id, plan, version, provider, model)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_actions_from_calls TO rollup_actions AS
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
    toUInt64(count()) AS calls,
    toUInt64(countIf(src.cost_usd IS NULL)) AS unpriced_calls,
    sum(src.input_tokens) AS input_tokens,
    sum(src.output_tokens) AS output_tokens,
    sum(src.cache_read_tokens) AS cache_read_tokens,
    sum(src.cache_write_tokens) AS cache_write_tokens,
    sum(src.reasoning_tokens) AS reasoning_tokens,
    sum(ifNull(src.cost_usd, toDecimal128(0, 18))) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    min(src.start_time) AS first_call,
    max(src.start_time) AS last_call
FROM calls AS src
GROUP BY hour, environment, feature, session_id, root_id, tenant, user_id, plan, version, provider, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_actions_from_restatements TO rollup_actions AS
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
    toUInt64(0) AS calls,
    toUInt64(0) AS unpriced_calls,
    toUInt64(0) AS input_tokens,
    toUInt64(0) AS output_tokens,
    toUInt64(0) AS cache_read_tokens,
    toUInt64(0) AS cache_write_tokens,
    toUInt64(0) AS reasoning_tokens,
    sum(src.cost_delta_usd) AS cost_usd,
    sum(src.cost_delta_usd) AS restated_usd,
    min(src.start_time) AS first_call,
    max(src.start_time) AS last_call
FROM cost_restatements AS src
GROUP BY hour, environment, feature, session_id, root_id, tenant, user_id, plan, version, provider, model