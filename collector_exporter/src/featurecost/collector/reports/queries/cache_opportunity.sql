-- Repeated prompt prefixes that were not served from the provider's cache. Calls carry the
-- instrumentation's keyed fingerprint of their leading system/instruction block
-- (featurecost.prompt.prefix_hash) and its length class in characters
-- (featurecost.prompt.prefix_class: a power of two, the prefix is at least that long).
-- Within one provider/model, a call is a repeat when the previous call with the same
-- fingerprint started at most {ttl_seconds} before it (the provider's cache would still
-- hold the prefix); the first call of such a run would have written the cache.
-- The prefix's tokens are estimated as class / 4 characters per token, capped by the call's
-- input; prefixes under {min_tokens} (the providers' minimum cacheable prompt) are left out.
-- Tenants are kept apart only when they have prices of their own ({priced_tenants}).
-- Calls that already read or wrote the cache, failed calls and calls without usage are not counted.
WITH
    fingerprinted AS (
        SELECT
            feature,
            tenant,
            provider,
            if(response_model != '', response_model, request_model) AS model,
            start_time,
            input_tokens,
            cache_read_tokens,
            cache_write_tokens,
            least(intDiv(toUInt64OrZero(attributes['featurecost.prompt.prefix_class']), 4), input_tokens) AS prefix_tokens,
            lagInFrame(toNullable(start_time), 1) OVER w AS previous_start,
            leadInFrame(toNullable(start_time), 1) OVER w AS next_start
        FROM calls FINAL
        WHERE ({environment:String} = '*' OR environment = {environment:String})
          AND superseded_by = ''  -- a superseded span is another span's call (0050)
          AND start_time >= {since:DateTime64(6, 'UTC')}
          AND start_time < {until:DateTime64(6, 'UTC')}
          AND attributes['featurecost.prompt.prefix_hash'] != ''
          AND superseded_by = ''  -- a superseded span is another span's call (0050)
          AND usage_source = 'reported'
          AND status != 'error'
        WINDOW w AS (
            PARTITION BY provider, model, attributes['featurecost.prompt.prefix_hash']
            ORDER BY start_time
            ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING
        )
    ),
    flagged AS (
        SELECT
            *,
            previous_start IS NOT NULL
                AND dateDiff('millisecond', previous_start, start_time) <= {ttl_seconds:UInt32} * 1000 AS is_repeat,
            next_start IS NOT NULL
                AND dateDiff('millisecond', start_time, next_start) <= {ttl_seconds:UInt32} * 1000 AS has_repeat,
            prefix_tokens >= {min_tokens:UInt32} AND cache_read_tokens = 0 AND cache_write_tokens = 0 AS eligible
        FROM fingerprinted
    )
SELECT
    feature,
    if(has({priced_tenants:Array(String)}, tenant), tenant, '') AS price_tenant,
    provider,
    model,
    toDate(start_time) AS day,
    count() AS fingerprinted_calls,
    countIf(eligible AND is_repeat) AS repeated_calls,
    sumIf(prefix_tokens, eligible AND is_repeat) AS cacheable_tokens,
    sumIf(prefix_tokens, eligible AND has_repeat AND NOT is_repeat) AS write_tokens
FROM flagged
GROUP BY feature, price_tenant, provider, model, day
ORDER BY feature, price_tenant, provider, model, day
