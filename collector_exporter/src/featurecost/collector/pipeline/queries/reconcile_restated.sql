-- The restatement deltas already appended for the given calls (trace id + span id keys):
-- a call that stops counting gets them withdrawn too, so its restated cost leaves every sum.
SELECT
    trace_id, span_id,
    sum(cost_delta_usd) AS cost_delta_usd,
    sum(input_cost_delta_usd) AS input_cost_delta_usd,
    sum(output_cost_delta_usd) AS output_cost_delta_usd
FROM cost_restatements FINAL
WHERE concat(trace_id, span_id) IN {keys:Array(String)}
GROUP BY trace_id, span_id
HAVING cost_delta_usd != 0 OR input_cost_delta_usd != 0 OR output_cost_delta_usd != 0
