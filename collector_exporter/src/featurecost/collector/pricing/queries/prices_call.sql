-- One stored call by span id (and trace id when given), with its restatements, for `prices explain`.
SELECT
    c.*,
    r.restatements AS restatements, r.cost_usd AS restated_cost_usd, r.price_entry AS restated_price_entry,
    r.price_data_version AS restated_price_data_version, r.reason AS restated_reason
FROM calls AS c FINAL
LEFT JOIN
(
    SELECT
        trace_id, span_id, count() AS restatements,
        argMax(cost_usd, restated_at) AS cost_usd,
        argMax(price_entry, restated_at) AS price_entry,
        argMax(price_data_version, restated_at) AS price_data_version,
        argMax(reason, restated_at) AS reason
    FROM cost_restatements FINAL
    GROUP BY trace_id, span_id
) AS r ON c.trace_id = r.trace_id AND c.span_id = r.span_id
WHERE c.span_id = {span_id:String} AND ({trace_id:String} = '' OR c.trace_id = {trace_id:String})
LIMIT 2
