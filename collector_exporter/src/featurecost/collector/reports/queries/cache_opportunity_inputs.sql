-- Input and cache-read tokens per feature, provider/model and day, tenants apart only when
-- they have prices of their own ({priced_tenants}): the cache-opportunity report's share of
-- input that was not a cache read, and the models whose cache prices it shows.
-- input_tokens includes cache reads and writes.
SELECT
    feature,
    if(has({priced_tenants:Array(String)}, tenant), tenant, '') AS price_tenant,
    provider,
    model,
    toDate(hour) AS day,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_tokens) AS cache_read_tokens
FROM rollup_hourly
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
GROUP BY feature, price_tenant, provider, model, day
HAVING sum(calls) != 0
ORDER BY feature, price_tenant, provider, model, day
