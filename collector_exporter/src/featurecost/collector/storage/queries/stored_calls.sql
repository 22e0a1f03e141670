-- How many distinct calls are stored: what a caller awaits before reading a report.
SELECT count() AS calls
FROM calls FINAL
