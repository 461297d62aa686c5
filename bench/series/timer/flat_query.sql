SELECT bucket, avg_pv_power_w, max_pv_power_w, avg_battery_power_w, avg_battery_soc_pct,
       avg_load_power_w, avg_export_power_w, sample_count
FROM bench_monthly_flat
WHERE device_id = $1 AND bucket >= $2 AND bucket < $3
ORDER BY bucket
