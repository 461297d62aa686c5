-- Plain PostgreSQL's answer to the continuous aggregates: sungrow_rollup holds, per
-- device and 15-minute bucket (UTC-aligned, so it nests in the local hours and days of
-- every zone whose offsets are multiples of 15 minutes: whole-hour, Asia/Kolkata's
-- +05:30, Asia/Kathmandu's +05:45), every sum the hourly aggregate carries. Ingest
-- adds to it in the statement that stores the samples (queries/samples.sql,
-- InsertSamplesRollup), counting only the rows it inserted, so a year frame reads
-- 35 040 rows instead of 6.3 million samples.
--
-- On TimescaleDB this migration creates nothing: the continuous aggregates serve there.
-- Up fills the table from the samples already stored, one device-month per statement,
-- with a NOTICE per batch (`sungrow migrate` prints them). Stop serve first: samples an
-- older serve inserts meanwhile would miss the rollup (`sungrow verify --repair` mends it).
-- sqlc cannot see a table created inside DO: sql/sqlc/rollup.sql mirrors it.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    dev     text;
    month   timestamptz;
    last    timestamptz;
    n       bigint;
    done    bigint := 0;
    started timestamptz := clock_timestamp();
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    CREATE TABLE sungrow_rollup (
        device_id               text             NOT NULL,
        bucket                  timestamptz      NOT NULL,
        sample_count            bigint           NOT NULL,
        sum_pv_power_w          double precision NOT NULL,
        max_pv_power_w          double precision NOT NULL,
        sum_battery_power_w     double precision NOT NULL,
        sum_battery_soc_pct     double precision NOT NULL,
        sum_load_power_w        double precision NOT NULL,
        sum_export_power_w      double precision NOT NULL,
        sum_grid_import_w       double precision NOT NULL,
        sum_grid_export_w       double precision NOT NULL,
        sum_battery_charge_w    double precision NOT NULL,
        sum_battery_discharge_w double precision NOT NULL,
        max_pv_daily_kwh        double precision,
        PRIMARY KEY (device_id, bucket)
    );
    -- Every device with samples, by a loose index scan of the primary key.
    FOR dev IN
        WITH RECURSIVE d AS (
            (SELECT s.device_id FROM sungrow_samples s ORDER BY s.device_id LIMIT 1)
            UNION ALL
            SELECT (SELECT s.device_id FROM sungrow_samples s
                    WHERE s.device_id > d.device_id ORDER BY s.device_id LIMIT 1)
            FROM d WHERE d.device_id IS NOT NULL
        )
        SELECT d.device_id FROM d WHERE d.device_id IS NOT NULL
    LOOP
        SELECT date_trunc('month', min(ts), 'UTC'), max(ts) INTO month, last
        FROM sungrow_samples WHERE device_id = dev;
        WHILE month <= last LOOP
            INSERT INTO sungrow_rollup
            SELECT device_id, date_bin('15 minutes', ts, '2000-01-01T00:00:00Z') AS bucket,
                   sum(sample_count),
                   sum(pv_power_w * sample_count), max(pv_power_w),
                   sum(battery_power_w * sample_count), sum(battery_soc_pct * sample_count),
                   sum(load_power_w * sample_count), sum(export_power_w * sample_count),
                   sum(greatest(-export_power_w, 0) * sample_count),
                   sum(greatest(export_power_w, 0) * sample_count),
                   sum(greatest(battery_power_w, 0) * sample_count),
                   sum(greatest(-battery_power_w, 0) * sample_count),
                   max(pv_daily_kwh)
            FROM sungrow_samples
            WHERE device_id = dev AND ts >= month AND ts < month + interval '1 month'
            GROUP BY 1, 2;
            GET DIAGNOSTICS n = ROW_COUNT;
            done := done + n;
            RAISE NOTICE 'sungrow_rollup: % %: % buckets (% in all), % s',
                dev, to_char(month AT TIME ZONE 'UTC', 'YYYY-MM'), n, done,
                round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
            month := month + interval '1 month';
        END LOOP;
    END LOOP;
    ANALYZE sungrow_rollup;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE IF EXISTS sungrow_rollup;
