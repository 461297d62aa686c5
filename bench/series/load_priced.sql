-- The money benchmark's one-year device: a sample every 5 minutes from :'from' to
-- :'to' (psql variables), each standing for 60 readings, so its hourly aggregate has a
-- row for every hour of the year, as a 5-second device's has, from far fewer samples
-- than a WASM database loads in a benchmark's patience.
INSERT INTO sungrow_samples (device_id, ts, pv_power_w, battery_power_w, battery_soc_pct,
                             load_power_w, export_power_w, sample_count)
SELECT 'bench-priced', ts,
       greatest(0, 4000 * sin(pi() * (extract(epoch FROM ts)::bigint % 86400) / 86400.0)),
       (extract(epoch FROM ts)::bigint % 2000) - 1000,
       (extract(epoch FROM ts)::bigint % 10000) / 100.0,
       300 + (extract(epoch FROM ts)::bigint % 1500),
       (extract(epoch FROM ts)::bigint % 1000) - 500,
       60
FROM generate_series(:'from'::timestamptz, :'to'::timestamptz - interval '5 minutes',
                     interval '5 minutes') AS ts;
ANALYZE sungrow_samples;
