// Test rig: the link's proxy, in a process of its own (test/rig/link.ts starts
// it), so that its pacing keeps time however busy the process under test is,
// as a real network would. Plain JavaScript: any Node runs it as it is.
// argv: upstream port, options as JSON. Messages: {stall: {direction,
// afterBytes}}, {release: true}, {sent: id} (answered with {id, sent}).
import { connect, createServer } from 'node:net'
import { Transform } from 'node:stream'
import { setTimeout } from 'node:timers'

const upstreamPort = Number(process.argv[2])
const o = JSON.parse(process.argv[3])

/** One direction's stall, shared by its connections' pacers. */
class Gate {
  stalledAt = undefined
  held = []
  release() {
    this.stalledAt = undefined
    for (const go of this.held.splice(0)) go()
  }
}

/** Holds each chunk until a link of `bytesPerSecond` would have carried it. */
class Pace extends Transform {
  free = 0
  last = 0
  carried = 0
  constructor(bytesPerSecond, rttMs, gate) {
    super()
    this.bytesPerSecond = bytesPerSecond
    this.rttMs = rttMs
    this.gate = gate
  }
  _transform(chunk, enc, done) {
    // A download stall counts each response's bytes from its status line, so
    // that it holds a blob's body, not the small answers to an upload's calls
    // that share a kept-alive connection.
    if (this.gate === gates.download && chunk.subarray(0, 7).toString() === 'HTTP/1.') {
      this.carried = 0
    }
    const stall = this.gate.stalledAt
    if (stall !== undefined && this.carried >= stall) {
      this.gate.held.push(() => this._transform(chunk, enc, done))
      return
    }
    if (stall !== undefined && this.carried + chunk.length > stall) {
      // Up to the stall point now, the rest when released.
      const n = stall - this.carried
      this.carried += n
      this.push(chunk.subarray(0, n))
      this.gate.held.push(() => this._transform(chunk.subarray(n), enc, done))
      return
    }
    this.carried += chunk.length
    const now = Date.now()
    // A chunk after the link went idle starts a new request: it pays the round
    // trip (waiting on this link's own pacing is no pause).
    const latency = now - Math.max(this.last, this.free) > 5 ? this.rttMs : 0
    this.last = now
    const start = Math.max(now + latency, this.free)
    this.free = start + (chunk.length / this.bytesPerSecond) * 1000
    // Timers are no finer than a millisecond: a chunk due within one goes now,
    // and the average still keeps to the cap.
    const wait = this.free - now
    if (wait < 2) done(null, chunk)
    else setTimeout(() => done(null, chunk), wait)
  }
}

const gates = { upload: new Gate(), download: new Gate() }
let sent = 0
const server = createServer(client => {
  const upstream = connect(upstreamPort, '127.0.0.1')
  client.on('data', d => (sent += d.length))
  client.pipe(new Pace(o.uploadBytesPerSecond, o.rttMs ?? 0, gates.upload)).pipe(upstream)
  upstream.pipe(new Pace(o.downloadBytesPerSecond ?? Infinity, 0, gates.download)).pipe(client)
  const end = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', end)
  upstream.on('error', end)
  client.on('close', end)
  // The upstream closing ends the client through the pipe, once the link has
  // carried what it still holds (paced or stalled): not at once, which would
  // cut a response short.
})
process.on('message', m => {
  if (m.stall) gates[m.stall.direction].stalledAt = m.stall.afterBytes
  if (m.release) {
    gates.upload.release()
    gates.download.release()
  }
  if (m.sent !== undefined) process.send({ id: m.sent, sent })
})
process.on('disconnect', () => process.exit(0))
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
