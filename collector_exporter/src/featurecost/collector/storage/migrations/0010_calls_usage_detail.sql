-- Normalization detail and client-claimed cost on every call (pricing helper, issue #5).
-- raw_usage keeps the usage attributes exactly as the span reported them, keyed by attribute
-- name, so the mapping to the normalized columns can be audited; usage_issues lists what the
-- normalizer found impossible and how it resolved it.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS cache_write_1h_tokens UInt64 DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS input_audio_tokens UInt64 DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS output_audio_tokens UInt64 DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS raw_usage Map(String, UInt64);
ALTER TABLE calls ADD COLUMN IF NOT EXISTS usage_convention LowCardinality(String) DEFAULT '';
ALTER TABLE calls ADD COLUMN IF NOT EXISTS usage_issues Array(String);
ALTER TABLE calls ADD COLUMN IF NOT EXISTS service_tier LowCardinality(String) DEFAULT '';
ALTER TABLE calls ADD COLUMN IF NOT EXISTS client_cost_usd Nullable(Decimal(38, 18));
ALTER TABLE calls ADD COLUMN IF NOT EXISTS cost_delta_vs_client_usd Nullable(Decimal(38, 18));
