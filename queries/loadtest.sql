-- name: CountSamplesAt :many
-- For `sungrow loadtest`: how many rows each acknowledged (device_id, ts) has, so a
-- lost sample (no row) and a duplicated one (more than one) both show.
SELECT ts, count(*) AS n
FROM sungrow_samples
WHERE device_id = @device_id AND ts = ANY(@ts::timestamptz[])
GROUP BY ts;
