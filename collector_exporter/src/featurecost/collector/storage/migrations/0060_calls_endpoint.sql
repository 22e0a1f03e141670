-- Who the provider is comes from the endpoint (issue #14): keep where each call went, so
-- `prices reprice` places it again, and what a gateway (OpenRouter) reported it billed, so a
-- gateway-priced call is restated from the gateway's number, not from a list price.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS endpoint LowCardinality(String) DEFAULT '';
ALTER TABLE calls ADD COLUMN IF NOT EXISTS gateway_cost_usd Nullable(Decimal(38, 18));
