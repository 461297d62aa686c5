-- For the benchmark only: a flat monthly continuous aggregate straight on the raw
-- samples (what the hierarchical sungrow_monthly replaces), with real-time aggregation.
CREATE MATERIALIZED VIEW bench_monthly_flat
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id, time_bucket(INTERVAL '1 month', ts, 'UTC') AS bucket,
       sum(pv_power_w * sample_count) / sum(sample_count) AS avg_pv_power_w,
       max(pv_power_w) AS max_pv_power_w,
       sum(battery_power_w * sample_count) / sum(sample_count) AS avg_battery_power_w,
       sum(battery_soc_pct * sample_count) / sum(sample_count) AS avg_battery_soc_pct,
       sum(load_power_w * sample_count) / sum(sample_count) AS avg_load_power_w,
       sum(export_power_w * sample_count) / sum(sample_count) AS avg_export_power_w,
       sum(sample_count)::bigint AS sample_count
FROM sungrow_samples
GROUP BY device_id, time_bucket(INTERVAL '1 month', ts, 'UTC')
WITH NO DATA;
