-- name: TariffLock :exec
-- Serializes `tariff set|import|remove` for the rest of the transaction, so two of
-- them cannot both pass the currency and overlap checks and then disagree.
SELECT pg_advisory_xact_lock(@key::bigint);

-- name: BumpPricesVersion :exec
-- Every change of a price makes the money kept for past days stale.
UPDATE sungrow_prices_version SET version = version + 1;

-- name: TariffCurrencies :many
-- The currencies a new price of @device_id ('' = all devices) must agree with: its
-- own and the all-devices prices, or for all devices every price.
SELECT DISTINCT currency
FROM sungrow_tariffs
WHERE @device_id::text = '' OR device_id IN (@device_id::text, '')
ORDER BY currency;

-- name: TariffsFrom :many
-- The rows of one tariff: the fixed price and the windows of a device from a date.
SELECT id, kind, start_hour, end_hour, days
FROM sungrow_tariffs
WHERE device_id = @device_id AND valid_from = (@valid_from::text)::date AND kind <> 'hourly'
ORDER BY id;

-- name: InsertTariff :one
INSERT INTO sungrow_tariffs (device_id, kind, valid_from, start_hour, end_hour, days,
                             import_price, export_price, currency)
VALUES (@device_id, @kind, (sqlc.narg(valid_from)::text)::date, sqlc.narg(start_hour), sqlc.narg(end_hour),
        sqlc.narg(days), (sqlc.narg(import_price)::text)::float8, (sqlc.narg(export_price)::text)::float8,
        @currency)
RETURNING id;

-- name: InsertHourlyPrices :execrows
-- One statement for a whole import (the arrays advance together); an hour priced
-- before is taken over by this import. Missing export prices travel as ''.
INSERT INTO sungrow_hourly_prices (device_id, start, tariff_id, import_price, export_price)
SELECT @device_id::text, unnest(@starts::timestamptz[]), @tariff_id::bigint,
       unnest(@import_prices::text[])::float8, nullif(unnest(@export_prices::text[]), '')::float8
ON CONFLICT (device_id, start) DO UPDATE
SET tariff_id = excluded.tariff_id, import_price = excluded.import_price, export_price = excluded.export_price;

-- name: DeleteEmptyImports :execrows
-- Imports whose every hour a later import took over.
DELETE FROM sungrow_tariffs t
WHERE t.kind = 'hourly' AND NOT EXISTS (SELECT 1 FROM sungrow_hourly_prices h WHERE h.tariff_id = t.id);

-- name: ListTariffs :many
-- Every price of @device_id and of all devices ('' = of every device); an import's
-- hours come from ImportedHours. ('' stands for the nulls a kind does not have.)
SELECT id, device_id, kind, coalesce(valid_from::text, '')::text AS valid_from, start_hour, end_hour, days,
       coalesce(import_price::text, '')::text AS import_price, coalesce(export_price::text, '')::text AS export_price,
       currency
FROM sungrow_tariffs
WHERE @device_id::text = '' OR device_id IN (@device_id::text, '')
ORDER BY device_id, valid_from NULLS LAST, start_hour NULLS FIRST, id;

-- name: ImportedHours :many
SELECT tariff_id, count(*)::bigint AS hours, min(start)::timestamptz AS first_start,
       max(start)::timestamptz AS last_start
FROM sungrow_hourly_prices
WHERE tariff_id = ANY(@tariff_ids::bigint[])
GROUP BY tariff_id;

-- name: DeleteTariff :execrows
DELETE FROM sungrow_tariffs WHERE id = @id;
