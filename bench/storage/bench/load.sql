-- One device, one 5-second sample per row over [:'from', :'to') (the bench tool binds
-- them), set
-- based (the TimescaleDB test server has no COPY). The values look like an SH-series
-- inverter's Modbus readings, because compression depends on them: powers in whole
-- watts with a few watts of noise, PV following the sun by season with passing
-- clouds, state of charge and pv_daily_kwh in the register's 0.1 steps, the battery's
-- temperature in 0.1 °C drifting with the day (thermal mass: no noise from one
-- reading to the next), the grid as the balance.
INSERT INTO sungrow_samples (device_id, ts, pv_power_w, pv_daily_kwh, battery_power_w,
                             battery_soc_pct, battery_temp_c, load_power_w, export_power_w,
                             sample_count)
SELECT 'bench-device', ts, pv, round(pv_kwh::numeric, 1)::float8, bat,
       round(soc::numeric, 1)::float8, round(temp::numeric, 1)::float8, load, pv - load - bat, 1
FROM (
    SELECT ts, pv, load, bat, soc, temp,
           -- the day's energy so far, as the inverter's register counts it
           6 * sun_day * (1 - cos(pi() * least(hour, 18) / 18)) / 2 AS pv_kwh
    FROM (
        SELECT ts, hour, sun_day,
               round(greatest(0, 6000 * sun_day * greatest(0, sin(pi() * (hour - 6) / 12)) * cloud
                              + (random() * 8 - 4))) AS pv,
               round(300 + 150 * (1 + sin(pi() * hour / 6)) + random() * 40) AS load,
               round(2000 * sin(pi() * hour / 12) + random() * 10) AS bat,
               50 + 40 * sin(pi() * hour / 12) AS soc,
               22 + 6 * sin(pi() * hour / 12) AS temp
        FROM (
            SELECT ts,
                   extract(epoch FROM ts - date_trunc('day', ts)) / 3600 AS hour,
                   0.6 + 0.4 * cos(2 * pi() * (extract(doy FROM ts) - 172) / 365) AS sun_day,
                   -- clouds: a slow wave of a few minutes over the day
                   0.75 + 0.25 * sin(extract(epoch FROM ts) / 300) AS cloud
            FROM generate_series(:'from'::timestamptz, :'to'::timestamptz - interval '5 seconds',
                                 interval '5 seconds') AS ts
        ) t
    ) v
) w
ON CONFLICT (device_id, ts) DO NOTHING;
