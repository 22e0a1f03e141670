-- Who delivers an alert's attempt when several collectors share one ClickHouse (k8s replicas
-- each run the budget evaluator): each collector that finds the alert pending inserts a claim
-- (the server stamps claimed_at); the earliest live claim for (alert, attempt) delivers, the
-- others skip it. A claim older than the lease no longer counts, so an alert whose claimer died
-- mid-delivery is taken over.
CREATE TABLE IF NOT EXISTS alert_claims
(
    dedupe_key String,
    attempt UInt32,
    collector String,
    claimed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (dedupe_key, attempt)
TTL toDateTime(claimed_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000
