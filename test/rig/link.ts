// Test rig: a runner's link in front of a local server. A TCP proxy that paces
// bytes to a bandwidth cap each way and adds a round trip to every request, so
// that transfers take the time they would over a real link (RIG.md: loopback
// makes every transfer look free), and a test can stop a job half way through one.
import { connect, createServer, type Server } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'

export interface Link {
  endpoint: string
  port: number
  /** Bytes clients have sent through it so far. */
  sent(): number
  /**
   * Stalled transfers: from now on a connection that has carried `afterBytes`
   * in `direction` holds the rest, open and silent, until release().
   */
  stall(direction: 'upload' | 'download', afterBytes?: number): void
  release(): void
  close(): Promise<void>
}

/** One direction's stall, shared by its connections' pacers. */
class Gate {
  stalledAt: number | undefined
  readonly held: (() => void)[] = []
  release(): void {
    this.stalledAt = undefined
    for (const go of this.held.splice(0)) go()
  }
}

export interface LinkOptions {
  /** Client to server. */
  uploadBytesPerSecond: number
  /** Server to client; unlimited when absent. */
  downloadBytesPerSecond?: number
  /** Added once to each request (a burst after a pause of the client's). */
  rttMs?: number
}

/** Holds each chunk until a link of `bytesPerSecond` would have carried it. */
class Pace extends Transform {
  private free = 0
  private last = 0
  private carried = 0
  constructor(
    private readonly bytesPerSecond: number,
    private readonly rttMs: number,
    private readonly gate: Gate
  ) {
    super()
  }
  override _transform(chunk: Buffer, enc: BufferEncoding, done: TransformCallback): void {
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

export async function startLink(upstreamPort: number, o: LinkOptions): Promise<Link> {
  const open = new Set<{ destroy(): void }>()
  const gates = { upload: new Gate(), download: new Gate() }
  let sent = 0
  const server: Server = createServer(client => {
    const upstream = connect(upstreamPort, '127.0.0.1')
    open.add(client).add(upstream)
    client.on('data', (d: Buffer) => (sent += d.length))
    client.pipe(new Pace(o.uploadBytesPerSecond, o.rttMs ?? 0, gates.upload)).pipe(upstream)
    upstream.pipe(new Pace(o.downloadBytesPerSecond ?? Infinity, 0, gates.download)).pipe(client)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    sent: () => sent,
    stall(direction, afterBytes = 0) {
      gates[direction].stalledAt = afterBytes
    },
    release() {
      gates.upload.release()
      gates.download.release()
    },
    close: () =>
      new Promise<void>(resolve => {
        for (const s of open) s.destroy()
        server.close(() => resolve())
      })
  }
}
