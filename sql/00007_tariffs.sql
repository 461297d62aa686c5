-- Prices for GET /v1/series' money fields (`sungrow tariff set|import|list|remove`).
--
-- sungrow_tariffs holds one row per price a user set or per CSV import:
--   fixed  - one import and one export price per kWh, from valid_from on;
--   window - a time-of-use price from valid_from on, for the local hours
--            [start_hour, end_hour) of the weekdays in days (bit 0 Monday … bit 6
--            Sunday), in SUNGROW_TZ; end_hour <= start_hour means the window runs past
--            midnight into the next day, and that part still belongs to the day it began;
--   hourly - one import of hourly prices, whose hours are in sungrow_hourly_prices.
-- Rows of one device_id ('' = all devices) and one valid_from form one tariff: its
-- fixed price (at most one) and its windows (never overlapping; checked by `tariff
-- set`); a window's price wins over the fixed one inside it. A tariff is in force from
-- local midnight of valid_from until the next valid_from of the same device_id.
-- Prices are float8, as every other quantity (numeric would cost a text conversion per
-- hour when multiplied with energy, 20 ms a year on the TimescaleDB test server); they
-- print back as typed, and may be negative.
--
-- +goose Up
CREATE TABLE sungrow_tariffs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('fixed', 'window', 'hourly')),
    valid_from   date,
    start_hour   smallint CHECK (start_hour BETWEEN 0 AND 23),
    end_hour     smallint CHECK (end_hour BETWEEN 1 AND 24),
    days         smallint CHECK (days BETWEEN 1 AND 127),
    import_price double precision,
    export_price double precision,
    currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (CASE kind
        WHEN 'hourly' THEN valid_from IS NULL AND start_hour IS NULL AND import_price IS NULL
        WHEN 'fixed' THEN valid_from IS NOT NULL AND start_hour IS NULL AND end_hour IS NULL
            AND days IS NULL AND import_price IS NOT NULL AND export_price IS NOT NULL
        ELSE valid_from IS NOT NULL AND start_hour IS NOT NULL AND end_hour IS NOT NULL
            AND start_hour <> end_hour AND days IS NOT NULL
            AND import_price IS NOT NULL AND export_price IS NOT NULL
    END)
);

CREATE UNIQUE INDEX sungrow_tariffs_one_fixed ON sungrow_tariffs (device_id, valid_from) WHERE kind = 'fixed';
CREATE INDEX sungrow_tariffs_device ON sungrow_tariffs (device_id, valid_from);

-- One price per hour and device ('' = all devices); start is a whole hour. A later
-- import of the same hour replaces the earlier price (and takes it over: tariff_id).
CREATE TABLE sungrow_hourly_prices (
    device_id    text        NOT NULL,
    start        timestamptz NOT NULL,
    tariff_id    bigint      NOT NULL REFERENCES sungrow_tariffs (id) ON DELETE CASCADE,
    import_price double precision NOT NULL,
    export_price double precision,
    PRIMARY KEY (device_id, start)
);

CREATE INDEX sungrow_hourly_prices_tariff ON sungrow_hourly_prices (tariff_id);

-- Bumped by every change of a price, in the same transaction: money computed under an
-- older version is stale.
CREATE TABLE sungrow_prices_version (
    version bigint  NOT NULL,
    one     boolean PRIMARY KEY DEFAULT true CHECK (one)
);
INSERT INTO sungrow_prices_version (version) VALUES (1);

-- The money of complete local days, as GET /v1/series computed it hour by hour from the
-- hourly aggregate (W·samples × price, like the queries), kept so that a year of
-- hourly prices is read as 365 rows instead of priced again as 8 760. A row is used only
-- while it still describes the same day: computed in the same zone, under the current
-- prices_version, and from as many samples as the daily aggregate now holds for the
-- day (a late sample changes sample_count); otherwise the day is priced again.
CREATE TABLE sungrow_money_daily (
    device_id      text        NOT NULL,
    day            timestamptz NOT NULL,
    zone           text        NOT NULL,
    prices_version bigint      NOT NULL,
    sample_count   bigint      NOT NULL,
    priced_hours   bigint      NOT NULL,
    unpriced_hours bigint      NOT NULL,
    fallback_hours bigint      NOT NULL,
    import_cost    double precision NOT NULL,
    export_revenue double precision NOT NULL,
    savings        double precision NOT NULL,
    PRIMARY KEY (device_id, day)
);

-- +goose Down
DROP TABLE IF EXISTS sungrow_money_daily;
DROP TABLE IF EXISTS sungrow_prices_version;
DROP TABLE sungrow_hourly_prices;
DROP TABLE sungrow_tariffs;
