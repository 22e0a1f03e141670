-- Calls that ran outside a user request and not yet on a batch tier, per feature, tenant,
-- provider/model, day and how we know (featurecost.latency: `batch` declared by the app,
-- `background` inferred by the instrumentation: no enclosing span). The caller prices the
-- tokens at the model's standard and Batch API prices of that day for that tenant.
-- Tenants are kept apart only when they have prices of their own ({priced_tenants}: the
-- prices file's tenants); everyone else pays the same prices, so one row serves them all.
-- Only calls with reported usage and a successful status: a failed call bills nothing.
-- input_tokens includes cache reads and writes; output_tokens includes reasoning.
SELECT
    feature,
    if(has({priced_tenants:Array(String)}, tenant), tenant, '') AS price_tenant,
    provider,
    if(response_model != '', response_model, request_model) AS model,
    toDate(start_time) AS day,
    attributes['featurecost.latency'] AS latency,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(output_tokens) AS output_tokens
FROM calls FINAL
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND superseded_by = ''  -- a superseded span is another span's call (0050)
  AND start_time >= {since:DateTime64(6, 'UTC')}
  AND start_time < {until:DateTime64(6, 'UTC')}
  AND attributes['featurecost.latency'] IN ('batch', 'background')
  AND superseded_by = ''  -- a superseded span is another span's call (0050)
  AND service_tier != 'batch'
  AND usage_source = 'reported'
  AND status != 'error'
GROUP BY feature, price_tenant, provider, model, day, latency
ORDER BY feature, price_tenant, provider, model, day, latency
