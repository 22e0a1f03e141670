-- Variable `environment`: the deployment.environment.name values seen.
SELECT DISTINCT environment
FROM calls
ORDER BY environment
