-- name: CostsHourly :many
-- The money of GET /v1/series, hour by hour: each hour's energy (from the hourly
-- aggregate here, from the samples in CostsRaw; the two differ only in the energy CTE e
-- and must be kept in step) times that hour's price, summed into @unit buckets
-- beginning in @bucket_zone. Negative prices count as they are. Ranges are half-open
-- [from_ts, to_ts) and aligned to the buckets.
WITH e AS (
    SELECT bucket AS h, sum_load_power_w AS load_w, sum_grid_import_w AS import_w, sum_grid_export_w AS export_w,
           sample_count AS samples
    FROM sungrow_hourly
    WHERE device_id = @device_id::text AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
),
-- Each date's tariff is in force from its local midnight until the next date of the
-- same device_id; the all-devices tariffs only until the device's first own date.
dates AS (
    SELECT device_id, valid_from,
           lead(valid_from) OVER (PARTITION BY device_id ORDER BY valid_from) AS valid_to
    FROM (SELECT DISTINCT device_id, valid_from FROM sungrow_tariffs
          WHERE device_id IN (@device_id::text, '') AND kind <> 'hourly') d
),
versions AS (
    SELECT d.device_id, d.valid_from,
           CASE WHEN d.device_id = '' THEN least(d.valid_to, own.first) ELSE d.valid_to END AS valid_to
    FROM dates d, (SELECT min(valid_from) AS first FROM dates WHERE device_id <> '') own
    WHERE d.device_id <> '' OR own.first IS NULL OR d.valid_from < own.first
),
-- The local wall clock of each hour, in SUNGROW_TZ (@zone), daylight saving included.
local AS (
    SELECT e.*, l::date AS day, extract(isodow FROM l)::int AS dow, extract(hour FROM l)::int AS hr
    FROM e, LATERAL (SELECT e.h AT TIME ZONE @zone::text AS l) z
),
-- Each hour's price: the device's hourly price; else, where the device has no tariff of
-- its own in force and no hourly prices around the hour, the all-devices hourly price;
-- else the window of the tariff in force that covers the hour (windows never overlap;
-- one past midnight belongs to the day it began), else its fixed price. An hour with an
-- hourly price but no export price takes the tariff's export price (0 without one).
-- "fallback": no hourly price, though the hour lies within the hourly prices in use.
chosen AS (
    SELECT local.*, v.device_id AS tariff_device,
           coalesce(w.import_price, f.import_price) AS fix_import,
           coalesce(w.export_price, f.export_price) AS fix_export,
           CASE WHEN hd.start IS NOT NULL OR v.device_id <> '' OR local.h BETWEEN span.dev_first AND span.dev_last
                THEN 'device' ELSE 'all' END AS layer,
           hd.start IS NOT NULL AS dev_has, hd.import_price AS dev_import, hd.export_price AS dev_export,
           hg.start IS NOT NULL AS all_has, hg.import_price AS all_import, hg.export_price AS all_export,
           local.h BETWEEN span.dev_first AND span.dev_last AS in_dev_span,
           local.h BETWEEN span.all_first AND span.all_last AS in_all_span
    FROM local
    CROSS JOIN (SELECT (SELECT min(start) FROM sungrow_hourly_prices WHERE device_id = @device_id::text) AS dev_first,
                       (SELECT max(start) FROM sungrow_hourly_prices WHERE device_id = @device_id::text) AS dev_last,
                       (SELECT min(start) FROM sungrow_hourly_prices WHERE device_id = '') AS all_first,
                       (SELECT max(start) FROM sungrow_hourly_prices WHERE device_id = '') AS all_last) span
    LEFT JOIN versions v ON local.day >= v.valid_from AND (v.valid_to IS NULL OR local.day < v.valid_to)
    LEFT JOIN sungrow_tariffs f ON f.kind = 'fixed' AND f.device_id = v.device_id AND f.valid_from = v.valid_from
    LEFT JOIN sungrow_tariffs w ON w.kind = 'window' AND w.device_id = v.device_id AND w.valid_from = v.valid_from
        AND CASE WHEN w.start_hour < w.end_hour
                 THEN w.days & (1 << (local.dow - 1)) <> 0 AND local.hr >= w.start_hour AND local.hr < w.end_hour
                 ELSE w.days & (1 << (local.dow - 1)) <> 0 AND local.hr >= w.start_hour
                   OR w.days & (1 << ((local.dow + 5) % 7)) <> 0 AND local.hr < w.end_hour
            END
    LEFT JOIN sungrow_hourly_prices hd ON hd.device_id = @device_id::text AND hd.start = local.h
    LEFT JOIN sungrow_hourly_prices hg ON hg.device_id = '' AND hg.start = local.h
),
priced AS (
    SELECT h, load_w, import_w, export_w, samples,
           CASE WHEN layer = 'device' AND dev_has THEN dev_import
                WHEN layer = 'all' AND all_has THEN all_import
                ELSE fix_import END AS import_price,
           CASE WHEN layer = 'device' AND dev_has THEN coalesce(dev_export, fix_export, 0)
                WHEN layer = 'all' AND all_has THEN coalesce(all_export, fix_export, 0)
                ELSE fix_export END AS export_price,
           fix_import IS NOT NULL AND CASE WHEN layer = 'device' THEN NOT dev_has AND in_dev_span
                                           ELSE NOT all_has AND in_all_span END AS fallback
    FROM chosen
)
-- Money in W·samples × price per kWh (the caller scales by the sample interval), over
-- the hours with a price; the hour counts say how many had one.
SELECT date_trunc(@unit::text, h, @bucket_zone::text)::timestamptz AS bucket,
       sum(samples)::bigint AS sample_count,
       count(*) FILTER (WHERE import_price IS NOT NULL)::bigint AS priced_hours,
       count(*) FILTER (WHERE import_price IS NULL)::bigint AS unpriced_hours,
       count(*) FILTER (WHERE fallback)::bigint AS fallback_hours,
       coalesce(sum(import_w * import_price), 0)::float8 AS import_cost,
       coalesce(sum(export_w * export_price), 0)::float8 AS export_revenue,
       coalesce(sum((load_w - import_w) * import_price), 0)::float8 AS savings
FROM priced
GROUP BY 1
ORDER BY 1;

-- name: CostsRaw :many
-- CostsHourly of hours the caller read (the arrays advance together: hour starts and
-- their sums in W·samples), from the raw samples or plain PostgreSQL's rollup: one
-- pricing for every path without the hourly aggregate.
WITH e AS (
    SELECT unnest(@hours::timestamptz[]) AS h, unnest(@load_w::float8[]) AS load_w,
           unnest(@import_w::float8[]) AS import_w, unnest(@export_w::float8[]) AS export_w,
           unnest(@samples::bigint[]) AS samples
),
-- Each date's tariff is in force from its local midnight until the next date of the
-- same device_id; the all-devices tariffs only until the device's first own date.
dates AS (
    SELECT device_id, valid_from,
           lead(valid_from) OVER (PARTITION BY device_id ORDER BY valid_from) AS valid_to
    FROM (SELECT DISTINCT device_id, valid_from FROM sungrow_tariffs
          WHERE device_id IN (@device_id::text, '') AND kind <> 'hourly') d
),
versions AS (
    SELECT d.device_id, d.valid_from,
           CASE WHEN d.device_id = '' THEN least(d.valid_to, own.first) ELSE d.valid_to END AS valid_to
    FROM dates d, (SELECT min(valid_from) AS first FROM dates WHERE device_id <> '') own
    WHERE d.device_id <> '' OR own.first IS NULL OR d.valid_from < own.first
),
-- The local wall clock of each hour, in SUNGROW_TZ (@zone), daylight saving included.
local AS (
    SELECT e.*, l::date AS day, extract(isodow FROM l)::int AS dow, extract(hour FROM l)::int AS hr
    FROM e, LATERAL (SELECT e.h AT TIME ZONE @zone::text AS l) z
),
-- Each hour's price: the device's hourly price; else, where the device has no tariff of
-- its own in force and no hourly prices around the hour, the all-devices hourly price;
-- else the window of the tariff in force that covers the hour (windows never overlap;
-- one past midnight belongs to the day it began), else its fixed price. An hour with an
-- hourly price but no export price takes the tariff's export price (0 without one).
-- "fallback": no hourly price, though the hour lies within the hourly prices in use.
chosen AS (
    SELECT local.*, v.device_id AS tariff_device,
           coalesce(w.import_price, f.import_price) AS fix_import,
           coalesce(w.export_price, f.export_price) AS fix_export,
           CASE WHEN hd.start IS NOT NULL OR v.device_id <> '' OR local.h BETWEEN span.dev_first AND span.dev_last
                THEN 'device' ELSE 'all' END AS layer,
           hd.start IS NOT NULL AS dev_has, hd.import_price AS dev_import, hd.export_price AS dev_export,
           hg.start IS NOT NULL AS all_has, hg.import_price AS all_import, hg.export_price AS all_export,
           local.h BETWEEN span.dev_first AND span.dev_last AS in_dev_span,
           local.h BETWEEN span.all_first AND span.all_last AS in_all_span
    FROM local
    CROSS JOIN (SELECT (SELECT min(start) FROM sungrow_hourly_prices WHERE device_id = @device_id::text) AS dev_first,
                       (SELECT max(start) FROM sungrow_hourly_prices WHERE device_id = @device_id::text) AS dev_last,
                       (SELECT min(start) FROM sungrow_hourly_prices WHERE device_id = '') AS all_first,
                       (SELECT max(start) FROM sungrow_hourly_prices WHERE device_id = '') AS all_last) span
    LEFT JOIN versions v ON local.day >= v.valid_from AND (v.valid_to IS NULL OR local.day < v.valid_to)
    LEFT JOIN sungrow_tariffs f ON f.kind = 'fixed' AND f.device_id = v.device_id AND f.valid_from = v.valid_from
    LEFT JOIN sungrow_tariffs w ON w.kind = 'window' AND w.device_id = v.device_id AND w.valid_from = v.valid_from
        AND CASE WHEN w.start_hour < w.end_hour
                 THEN w.days & (1 << (local.dow - 1)) <> 0 AND local.hr >= w.start_hour AND local.hr < w.end_hour
                 ELSE w.days & (1 << (local.dow - 1)) <> 0 AND local.hr >= w.start_hour
                   OR w.days & (1 << ((local.dow + 5) % 7)) <> 0 AND local.hr < w.end_hour
            END
    LEFT JOIN sungrow_hourly_prices hd ON hd.device_id = @device_id::text AND hd.start = local.h
    LEFT JOIN sungrow_hourly_prices hg ON hg.device_id = '' AND hg.start = local.h
),
priced AS (
    SELECT h, load_w, import_w, export_w, samples,
           CASE WHEN layer = 'device' AND dev_has THEN dev_import
                WHEN layer = 'all' AND all_has THEN all_import
                ELSE fix_import END AS import_price,
           CASE WHEN layer = 'device' AND dev_has THEN coalesce(dev_export, fix_export, 0)
                WHEN layer = 'all' AND all_has THEN coalesce(all_export, fix_export, 0)
                ELSE fix_export END AS export_price,
           fix_import IS NOT NULL AND CASE WHEN layer = 'device' THEN NOT dev_has AND in_dev_span
                                           ELSE NOT all_has AND in_all_span END AS fallback
    FROM chosen
)
-- Money in W·samples × price per kWh (the caller scales by the sample interval), over
-- the hours with a price; the hour counts say how many had one.
SELECT date_trunc(@unit::text, h, @bucket_zone::text)::timestamptz AS bucket,
       sum(samples)::bigint AS sample_count,
       count(*) FILTER (WHERE import_price IS NOT NULL)::bigint AS priced_hours,
       count(*) FILTER (WHERE import_price IS NULL)::bigint AS unpriced_hours,
       count(*) FILTER (WHERE fallback)::bigint AS fallback_hours,
       coalesce(sum(import_w * import_price), 0)::float8 AS import_cost,
       coalesce(sum(export_w * export_price), 0)::float8 AS export_revenue,
       coalesce(sum((load_w - import_w) * import_price), 0)::float8 AS savings
FROM priced
GROUP BY 1
ORDER BY 1;

-- name: DevicePricing :one
-- The currency of the prices a device sees ('' without any: one per device, checked
-- by `sungrow tariff`), and the version of the prices.
SELECT coalesce((SELECT currency FROM sungrow_tariffs WHERE device_id IN (@device_id::text, '') LIMIT 1), '')::text AS currency,
       (SELECT version FROM sungrow_prices_version)::bigint AS prices_version;

-- name: DaySampleCounts :many
-- Every local day with samples in [from_ts, to_ts) (the daily aggregate's buckets) and
-- its sample count, which a kept day's must equal (see sungrow_money_daily). Joined
-- with KeptMoney by the caller: in one statement the planner, blind to how many days
-- are kept, compares every day with every other.
SELECT bucket AS day, sample_count
FROM sungrow_daily
WHERE device_id = @device_id::text AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
ORDER BY bucket;

-- name: KeptMoney :many
-- The money kept for the local days in [from_ts, to_ts) in @zone under the current
-- prices.
SELECT day, sample_count, priced_hours, unpriced_hours, fallback_hours, import_cost, export_revenue, savings
FROM sungrow_money_daily
WHERE device_id = @device_id::text AND day >= @from_ts::timestamptz AND day < @to_ts::timestamptz
  AND zone = @zone::text AND prices_version = (SELECT version FROM sungrow_prices_version)
ORDER BY day;

-- name: KeepMoneyDays :exec
-- Keeps days CostsHourly priced (arrays advance together) under the prices version
-- read before they were priced: a price change racing the pricing leaves rows of the
-- old version, which are never used.
INSERT INTO sungrow_money_daily (device_id, day, zone, prices_version, sample_count, priced_hours,
                                 unpriced_hours, fallback_hours, import_cost, export_revenue, savings)
SELECT @device_id::text, unnest(@days::timestamptz[]), @zone::text, @prices_version::bigint,
       unnest(@sample_counts::bigint[]), unnest(@priced_hours::bigint[]), unnest(@unpriced_hours::bigint[]),
       unnest(@fallback_hours::bigint[]), unnest(@import_costs::float8[]), unnest(@export_revenues::float8[]),
       unnest(@savings::float8[])
ON CONFLICT (device_id, day) DO UPDATE
SET zone = excluded.zone, prices_version = excluded.prices_version, sample_count = excluded.sample_count,
    priced_hours = excluded.priced_hours, unpriced_hours = excluded.unpriced_hours,
    fallback_hours = excluded.fallback_hours, import_cost = excluded.import_cost,
    export_revenue = excluded.export_revenue, savings = excluded.savings;
