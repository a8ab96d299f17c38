// Test rig: a runner's link in front of a local server. A TCP proxy that paces
// bytes to a bandwidth cap each way and adds a round trip to every request, so
// that transfers take the time they would over a real link (RIG.md: loopback
// makes every transfer look free), and a test can stall or stop a job half way
// through one. The proxy runs in a process of its own (link-proxy.mjs): in the
// process under test, its timers would wait whenever that process is busy.
import { fork } from 'node:child_process'
import { join } from 'node:path'
import { RIG_DIR } from './world.js'

export interface Link {
  endpoint: string
  port: number
  /** Bytes clients have sent through it so far. */
  sent(): Promise<number>
  /**
   * Stalled transfers: from now on a connection that has carried `afterBytes`
   * in `direction` (downloads: of one response) holds the rest, open and
   * silent, until release().
   */
  stall(direction: 'upload' | 'download', afterBytes?: number): Promise<void>
  release(): Promise<void>
  close(): Promise<void>
}

export interface LinkOptions {
  /** Client to server. */
  uploadBytesPerSecond: number
  /** Server to client; unlimited when absent. */
  downloadBytesPerSecond?: number
  /** Added once to each request (a burst after a pause of the client's). */
  rttMs?: number
}

interface Reply {
  port?: number
  id?: number
  sent?: number
}

export async function startLink(upstreamPort: number, o: LinkOptions): Promise<Link> {
  const child = fork(join(RIG_DIR, 'link-proxy.mjs'), [String(upstreamPort), JSON.stringify(o)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const replies = new Map<number, (n: number) => void>()
  let asked = 0
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', code => reject(new Error(`the link proxy exited with ${code}`)))
    child.on('message', (m: Reply) => {
      if (m.port !== undefined) resolve(m.port)
      if (m.id !== undefined) replies.get(m.id)?.(m.sent ?? 0)
    })
  })
  child.removeAllListeners('exit')
  /** A message, and its answer: once the proxy answers, it has acted on the message. */
  const ask = (m: object): Promise<number> =>
    new Promise(resolve => {
      const id = ++asked
      replies.set(id, resolve)
      child.send({ ...m, sent: id })
    })
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    sent: () => ask({}),
    stall: async (direction, afterBytes = 0) => {
      await ask({ stall: { direction, afterBytes } })
    },
    release: async () => {
      await ask({ release: true })
    },
    close: () =>
      new Promise<void>(resolve => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill()
      })
  }
}
