-- Table: why calls are unpriced, per model, so a missing price override is one look away.
SELECT
    provider,
    if(response_model = '', request_model, response_model) AS model,
    unpriced_reason,
    count() AS calls,
    groupUniqArray(10)(feature) AS features
FROM calls FINAL
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
  AND cost_usd IS NULL
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
GROUP BY provider, model, unpriced_reason
ORDER BY calls DESC, model
