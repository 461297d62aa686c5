-- name: PricesVersion :one
-- The version of the prices, raised by every change of them (`sungrow tariff`): money
-- kept under an older one is priced again.
SELECT version FROM sungrow_prices_version;

-- name: DevicesWithDays :many
-- Every device the daily aggregate holds days of: whose money is kept again after the
-- prices changed.
SELECT DISTINCT device_id FROM sungrow_daily ORDER BY device_id;
