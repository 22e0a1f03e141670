-- Stored calls of the given traces that report one of the given provider response ids, in
-- their current state (FINAL: a withdrawn row shows its superseding re-insert). The time
-- window only prunes partitions: spans of one call start within the call's duration.
SELECT *
FROM calls FINAL
WHERE start_time >= {since:DateTime64(6, 'UTC')}
  AND start_time < {until:DateTime64(6, 'UTC')}
  AND trace_id IN {traces:Array(String)}
  AND response_id IN {responses:Array(String)}
  AND response_id != ''
