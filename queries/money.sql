-- name: PricesVersion :one
-- The version of the prices, raised by every change of them (`sungrow tariff`): money
-- kept under an older one is priced again.
SELECT version FROM sungrow_prices_version;

-- name: DevicesWithDays :many
-- Every device the daily aggregate holds days of: whose money is kept again after the
-- prices changed.
SELECT DISTINCT device_id FROM sungrow_daily ORDER BY device_id;

-- name: DeleteDeviceMoney :exec
-- With DeleteDeviceSamples: a device's samples all went, so does the money kept for
-- its days (a device added again with the same history must not find it valid).
DELETE FROM sungrow_money_daily WHERE device_id = @device_id::text;

-- name: ForgetKeptMoney :exec
-- The money kept for the days of each device ('' for every device) that may hold a
-- bucket recomputed in [from_ts, to_ts) (arrays advance together): a repair that
-- changes a day's sums but not its sample count would leave it looking valid. A local
-- day lasts at most 26 hours; a neighbouring day forgotten too is priced again.
DELETE FROM sungrow_money_daily m
USING (SELECT unnest(@device_ids::text[]) AS device_id, unnest(@from_ts::timestamptz[]) AS from_ts,
              unnest(@to_ts::timestamptz[]) AS to_ts) t
WHERE (t.device_id = '' OR m.device_id = t.device_id)
  AND m.day > t.from_ts - interval '26 hours' AND m.day < t.to_ts;
