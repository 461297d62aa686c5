-- One device, one 5-second sample per row from :'from' to :'to' (psql variables), set
-- based so 6.3 million rows load in one statement. Values vary smoothly with the time
-- of day so buckets differ.
INSERT INTO sungrow_samples (device_id, ts, pv_power_w, battery_power_w, battery_soc_pct,
                             load_power_w, export_power_w, sample_count)
SELECT 'bench-device', ts,
       greatest(0, 4000 * sin(pi() * (extract(epoch FROM ts)::bigint % 86400) / 86400.0)),
       (extract(epoch FROM ts)::bigint % 2000) - 1000,
       (extract(epoch FROM ts)::bigint % 10000) / 100.0,
       300 + (extract(epoch FROM ts)::bigint % 1500),
       (extract(epoch FROM ts)::bigint % 1000) - 500,
       1
FROM generate_series(:'from'::timestamptz, :'to'::timestamptz - interval '5 seconds',
                     interval '5 seconds') AS ts;
ANALYZE sungrow_samples;
