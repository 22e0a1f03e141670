-- Prompt-cache use per feature, per provider/model, tenant and day (the caller prices the
-- saving at each model's price of that day for that tenant: contract prices are per tenant).
-- input_tokens includes cache reads and writes.
SELECT
    feature,
    provider,
    model,
    tenant,
    toDate(hour) AS day,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens
FROM rollup_hourly
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
GROUP BY feature, provider, model, tenant, day
ORDER BY feature, provider, model, tenant, day
