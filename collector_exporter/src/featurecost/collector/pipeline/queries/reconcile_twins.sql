-- Stored calls that report one of the given provider response ids, in their current state
-- (FINAL: a withdrawn row shows its superseding re-insert); reconcile.py keeps those of the
-- same service. The time window only prunes partitions.
SELECT *
FROM calls FINAL
WHERE start_time >= {since:DateTime64(6, 'UTC')}
  AND start_time < {until:DateTime64(6, 'UTC')}
  AND response_id IN {responses:Array(String)}
  AND response_id != ''
