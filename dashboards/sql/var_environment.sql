-- Variable `environment`: the deployment.environment.name values seen.
SELECT DISTINCT environment
FROM rollup_hourly
ORDER BY environment
