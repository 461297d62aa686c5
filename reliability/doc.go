// Package reliability holds the tests that show sungrow keeps working under load, while
// Redis or PostgreSQL go away, and against slow, vanishing and hostile clients, and that
// it loses nothing on the way. It has no code of its own: its tests start `sungrow
// serve` in-process (or as a subprocess for the long form), their own redis-server and
// PostgreSQL instance, and drive them with the loadtest package.
//
// The short form runs in `go test ./...`; the long form (60 s of load with both faults)
// runs with SUNGROW_LONG=1, see scripts/reliability.
package reliability
