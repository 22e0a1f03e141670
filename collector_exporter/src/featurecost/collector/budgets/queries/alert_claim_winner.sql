-- The collector that delivers this attempt of this alert: the earliest claim still inside
-- its lease (ties broken by collector id, so every collector reads the same winner).
SELECT collector
FROM alert_claims
WHERE dedupe_key = {key:String}
  AND attempt = {attempt:UInt32}
  AND claimed_at > now64(3) - toIntervalSecond({lease_seconds:UInt32})
ORDER BY claimed_at, collector
LIMIT 1
