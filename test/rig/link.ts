// Test rig: a runner's link in front of a local server. A TCP proxy that paces
// what the client sends to a bandwidth cap, so that an upload takes the time it
// would over a real link (a test can stop a job half way through one).
import { connect, createServer, type Server } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'

export interface Link {
  endpoint: string
  /** Bytes clients have sent through it so far. */
  sent(): number
  close(): Promise<void>
}

/** Paces bytes to `bytesPerSecond`. */
class Pace extends Transform {
  private sent = 0
  private readonly start = Date.now()
  constructor(private readonly bytesPerSecond: number) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sent += chunk.length
    const due = this.start + (this.sent / this.bytesPerSecond) * 1000
    setTimeout(() => done(null, chunk), Math.max(0, due - Date.now()))
  }
}

export async function startLink(
  upstreamPort: number,
  o: { uploadBytesPerSecond: number }
): Promise<Link> {
  const open = new Set<{ destroy(): void }>()
  let sent = 0
  const server: Server = createServer(client => {
    const upstream = connect(upstreamPort, '127.0.0.1')
    open.add(client).add(upstream)
    client.on('data', (d: Buffer) => (sent += d.length))
    client.pipe(new Pace(o.uploadBytesPerSecond)).pipe(upstream)
    upstream.pipe(client)
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
    sent: () => sent,
    close: () =>
      new Promise<void>(resolve => {
        for (const s of open) s.destroy()
        server.close(() => resolve())
      })
  }
}
