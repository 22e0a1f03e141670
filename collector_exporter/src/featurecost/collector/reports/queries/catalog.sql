-- Every environment and feature the rollups have ever seen, with calls and the last hour
-- seen: the page's environment picker and the CLI's "unknown feature — known: …" hints.
SELECT
    environment,
    feature,
    sum(calls) AS calls,
    max(hour) AS last_seen
FROM rollup_hourly
GROUP BY environment, feature
HAVING calls > 0
ORDER BY environment, feature
