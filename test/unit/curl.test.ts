// curlGet with the real curl against a local HTTP server: the bytes come out
// of its stdout, the URL never on its command line, and progress is reported
// while bytes arrive, not while curl's meter redraws a stalled transfer.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curlGet, receivedOf } from '../../src/transfer/curl.js'

const CHUNK = 64 * 1024
let server: Server
let base: string

beforeAll(async () => {
  // /flow: 20 chunks, one every 100 ms. /stall: 10 chunks, then nothing for
  // 3.5 s, then the rest.
  server = createServer((req, res) => {
    const stall = req.url?.startsWith('/stall') === true
    res.writeHead(200, { 'content-length': String(20 * CHUNK) })
    let sent = 0
    const next = (): void => {
      res.write(Buffer.alloc(CHUNK, sent))
      sent++
      if (sent === 20) res.end()
      else setTimeout(next, stall && sent === 10 ? 3500 : 100)
    }
    next()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(() => new Promise<void>(resolve => server.close(() => resolve())))

/** Runs curlGet on `path`: the bytes it wrote, and when progress was called (ms from start). */
async function get(path: string): Promise<{ bytes: number; calls: number[]; args: string[] }> {
  const start = Date.now()
  const calls: number[] = []
  const child = curlGet('curl', `${base}${path}?X-Amz-Signature=secret`, () =>
    calls.push(Date.now() - start)
  )
  let bytes = 0
  child.stdout!.on('data', (d: Buffer) => (bytes += d.length))
  const code = await new Promise(resolve => child.on('close', resolve))
  expect(code).toBe(0)
  return { bytes, calls, args: child.spawnargs }
}

describe('curlGet', () => {
  it('writes the whole body to stdout, the signed URL not on its command line', async () => {
    const r = await get('/flow')
    expect(r.bytes).toBe(20 * CHUNK)
    expect(r.args.join(' ')).not.toContain('secret')
    expect(r.calls.length).toBeGreaterThanOrEqual(1)
  })

  it('reports progress while bytes arrive, none while the transfer stalls', async () => {
    const r = await get('/stall')
    expect(r.bytes).toBe(20 * CHUNK)
    // Bytes flow for about 1 s, stall for 3.5 s, flow for 1 s. The meter
    // redraws every second throughout; in the stall, after the first redraw
    // that can still show its last bytes, nothing counts as progress.
    const inStall = r.calls.filter(t => t > 2300 && t < 4300)
    expect(inStall).toEqual([])
    expect(r.calls.some(t => t >= 4300)).toBe(true)
  }, 20_000)

  it('reads the Received column of the meter, nothing else', () => {
    const header = '  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current'
    expect(receivedOf(header)).toBe(undefined)
    expect(
      receivedOf('100  236M  100  236M    0     0   812M      0 --:--:-- --:--:-- --:--:--  813M')
    ).toBe('236M')
    expect(
      receivedOf(' 45 1280k   45  576k    0     0   560k      0  0:00:02  0:00:01  0:00:01  560k')
    ).toBe('576k')
    expect(receivedOf('curl: (22) The requested URL returned error: 404')).toBe(undefined)
  })
})
