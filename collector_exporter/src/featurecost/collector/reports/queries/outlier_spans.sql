-- The costliest call of each given root action (user action) in the window: the span id a
-- reader passes to `featurecost prices explain` to see how that action was priced.
SELECT
    root_id,
    argMax((span_id, trace_id), ifNull(cost_usd, toDecimal128(0, 18))) AS costliest
FROM calls FINAL
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND superseded_by = ''  -- a superseded span is another span's call (0050)
  AND start_time >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND start_time < {until:DateTime64(6, 'UTC')}
  AND root_id IN {root_ids:Array(String)}
GROUP BY root_id
