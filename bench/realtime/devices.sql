-- bench/realtime/run: fills the devices table with :n devices and one token each
-- (psql -v n=100000 -f), to show that authentication does not slow down with them.
-- Their tokens are never used; only their hashes matter.
INSERT INTO sungrow_devices (id, name)
SELECT 'bench-extra-' || g, 'bench filler' FROM generate_series(1, :n) g;
INSERT INTO sungrow_tokens (device_id, sha256, label)
SELECT 'bench-extra-' || g, sha256(convert_to('bench-extra-token-' || g, 'UTF8')), 'bench filler'
FROM generate_series(1, :n) g;
