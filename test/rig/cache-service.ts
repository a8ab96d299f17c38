// Test rig: the GitHub Actions cache service, protocol v2 (twirp JSON), in front
// of a real Azurite blob store. The real `@actions/cache` client talks to it
// when ACTIONS_CACHE_SERVICE_V2 and ACTIONS_RESULTS_URL point here.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startAzurite } from './azurite.js'
import { startLink, type Link, type LinkOptions } from './link.js'

const PREFIX = '/twirp/github.actions.results.api.v1.CacheService/'

export interface Entry {
  key: string
  version: string
  blob: string
  sizeBytes: number
  finalized: boolean
  /** Creation order; larger is newer. */
  seq: number
  /** The ref of the job that made it (the service's one ref). */
  ref: string
  createdAt: number
  lastAccessedAt: number
}

export interface CacheService {
  url: string
  /** Environment that makes `@actions/cache` use this service. */
  env: Record<string, string>
  entries(): Entry[]
  /** Answer the next `count` twirp calls with `status` (500, 429, …). */
  failNext(status: number, count?: number): void
  /** Every twirp method called, in order. */
  calls: string[]
  /** Replaces a stored entry's bytes in Azurite, as a flipped bit or a bad writer would. */
  overwrite(key: string, bytes: Buffer): Promise<void>
  /** Blob transfers stall (the link's stall(); a service started with a link). */
  stall(direction: 'upload' | 'download', afterBytes?: number): Promise<void>
  release(): Promise<void>
  /** Forgets an entry, as GitHub's eviction does. */
  remove(key: string): void
  /** Calls to the REST API (`GET /repos/…/actions/caches`, …), in order. */
  restCalls: string[]
  /** Environment for a job that may use the REST API with a token. */
  apiEnv: Record<string, string>
  stop(): Promise<void>
}

export interface ServiceOptions {
  /**
   * A runner's link: every twirp call waits `rttMs`, and blob transfers go
   * through a paced proxy in front of Azurite (test/rig/link.ts).
   */
  link?: LinkOptions & { rttMs: number }
}

/** The repository and ref the rig's REST API answers for. */
export const RIG_REPOSITORY = 'rig-owner/rig-repo'
export const RIG_REF = 'refs/heads/main'
const REST = /^\/repos\/([^/]+)\/([^/]+)\/actions\/caches(?:\/(\d+))?(?:\?(.*))?$/

export async function startCacheService(o: ServiceOptions = {}): Promise<CacheService> {
  const azurite = await startAzurite()
  const azurePort = Number(new URL(azurite.endpoint).port)
  const link: Link | undefined = o.link ? await startLink(azurePort, o.link) : undefined
  /** A SAS URL, through the link when there is one. */
  const blobUrl = (blob: string): string => {
    const url = azurite.sasUrl(blob)
    return link ? url.replace(`:${azurePort}/`, `:${link.port}/`) : url
  }
  const rtt = o.link?.rttMs ?? 0
  const entries: Entry[] = []
  const calls: string[] = []
  let failures: { status: number; count: number } = { status: 0, count: 0 }
  let seq = 0

  const restCalls: string[] = []
  /**
   * GitHub's REST API for caches: list (paged) and delete by key and ref, as
   * documented at docs.github.com/rest/actions/cache; a token is required.
   */
  function rest(req: IncomingMessage, res: ServerResponse): void {
    const m = REST.exec(req.url ?? '')
    restCalls.push(`${req.method} ${req.url}`)
    if (!m) return send(res, 404, { message: 'Not Found' })
    if (!/^(token|Bearer) \S+/.test(req.headers.authorization ?? ''))
      return send(res, 401, { message: 'Requires authentication' })
    if (`${m[1]}/${m[2]}` !== RIG_REPOSITORY) return send(res, 404, { message: 'Not Found' })
    const q = new URLSearchParams(m[4] ?? '')
    const ref = q.get('ref')
    const done = entries.filter(e => e.finalized && (!ref || e.ref === ref))
    const shown = (e: Entry) => ({
      id: e.seq,
      ref: e.ref,
      key: e.key,
      version: e.version,
      last_accessed_at: new Date(e.lastAccessedAt).toISOString(),
      created_at: new Date(e.createdAt).toISOString(),
      size_in_bytes: e.sizeBytes
    })
    if (req.method === 'GET' && !m[3]) {
      const key = q.get('key')
      const list = done
        .filter(e => !key || e.key.startsWith(key))
        .sort((a, b) => b.lastAccessedAt - a.lastAccessedAt)
      const per = Math.min(Number(q.get('per_page') ?? 30), 100)
      const page = Number(q.get('page') ?? 1)
      const slice = list.slice((page - 1) * per, page * per)
      if (page * per < list.length) {
        const next = new URLSearchParams(q)
        next.set('page', String(page + 1))
        res.setHeader(
          'link',
          `<${url}repos/${m[1]}/${m[2]}/actions/caches?${next.toString()}>; rel="next"`
        )
      }
      return send(res, 200, { total_count: list.length, actions_caches: slice.map(shown) })
    }
    if (req.method === 'DELETE' && !m[3]) {
      const key = q.get('key') ?? ''
      const gone = done.filter(e => e.key === key)
      if (gone.length === 0) return send(res, 404, { message: 'Not Found' })
      for (const e of gone) entries.splice(entries.indexOf(e), 1)
      return send(res, 200, { total_count: gone.length, actions_caches: gone.map(shown) })
    }
    return send(res, 404, { message: 'Not Found' })
  }

  const server = createServer((req, res) => {
    if ((req.url ?? '').startsWith('/repos/')) return rest(req, res)
    void readJson(req).then(
      async body => {
        if (rtt > 0) await new Promise(r => setTimeout(r, rtt))
        const method = (req.url ?? '').startsWith(PREFIX)
          ? (req.url ?? '').slice(PREFIX.length)
          : ''
        calls.push(method)
        if (failures.count > 0) {
          failures.count--
          return send(res, failures.status, { code: 'unavailable', msg: 'injected failure' })
        }
        const handler = handlers[method]
        if (!handler) return send(res, 404, { code: 'bad_route', msg: `no method ${method}` })
        const [status, answer] = handler(body)
        send(res, status, answer)
      },
      (err: unknown) => send(res, 400, { code: 'malformed', msg: String(err) })
    )
  })

  const handlers: Record<string, (b: Record<string, unknown>) => [number, unknown]> = {
    CreateCacheEntry(b) {
      const key = String(b.key ?? '')
      const version = String(b.version ?? '')
      if (entries.some(e => e.key === key && e.version === version)) {
        return [
          409,
          { code: 'already_exists', msg: 'cache entry with the same key already exists' }
        ]
      }
      const entry: Entry = {
        key,
        version,
        blob: `${++seq}-${version}`,
        sizeBytes: 0,
        finalized: false,
        seq,
        ref: RIG_REF,
        createdAt: Date.now(),
        lastAccessedAt: Date.now()
      }
      entries.push(entry)
      return [200, { ok: true, signed_upload_url: blobUrl(entry.blob) }]
    },
    FinalizeCacheEntryUpload(b) {
      const entry = entries.find(e => e.key === b.key && e.version === b.version && !e.finalized)
      if (!entry) return [404, { code: 'not_found', msg: 'no entry being uploaded' }]
      entry.finalized = true
      entry.sizeBytes = Number(b.size_bytes ?? 0)
      return [200, { ok: true, entry_id: String(entry.seq) }]
    },
    GetCacheEntryDownloadURL(b) {
      const version = String(b.version ?? '')
      const restoreKeys = Array.isArray(b.restore_keys) ? b.restore_keys.map(String) : []
      const found = lookup(entries, String(b.key ?? ''), restoreKeys, version)
      if (!found) return [200, { ok: false, signed_download_url: '', matched_key: '' }]
      found.lastAccessedAt = Date.now()
      return [200, { ok: true, signed_download_url: blobUrl(found.blob), matched_key: found.key }]
    }
  }

  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}/`
  return {
    url,
    env: {
      ACTIONS_CACHE_SERVICE_V2: 'true',
      ACTIONS_RESULTS_URL: url,
      ACTIONS_RUNTIME_TOKEN: 'rig-token',
      GITHUB_SERVER_URL: 'https://github.com'
    },
    apiEnv: {
      GITHUB_API_URL: url.replace(/\/$/, ''),
      GITHUB_REPOSITORY: RIG_REPOSITORY,
      GITHUB_REF: RIG_REF
    },
    restCalls,
    entries: () => entries.filter(e => e.finalized),
    failNext(status, count = 1) {
      failures = { status, count }
    },
    calls,
    async overwrite(key, bytes) {
      const entry = entries.find(e => e.key === key && e.finalized)
      if (!entry) throw new Error(`no entry ${key}`)
      const r = await fetch(azurite.sasUrl(entry.blob), {
        method: 'PUT',
        headers: { 'x-ms-blob-type': 'BlockBlob', 'content-length': String(bytes.length) },
        body: bytes
      })
      if (!r.ok) throw new Error(`overwriting ${key}: ${r.status} ${await r.text()}`)
    },
    async stall(direction, afterBytes) {
      if (!link) throw new Error('stall() needs a service started with a link')
      await link.stall(direction, afterBytes)
    },
    async release() {
      await link?.release()
    },
    remove(key) {
      const i = entries.findIndex(e => e.key === key)
      if (i < 0) throw new Error(`no entry ${key}`)
      entries.splice(i, 1)
    },
    async stop() {
      await link?.close()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
      await azurite.stop()
    }
  }
}

/** The service's lookup: exact key, then prefix of the key, then each restore key
 * (exact, then prefix), newest first, among finished entries of the same version. */
export function lookup(
  all: Entry[],
  key: string,
  restoreKeys: string[],
  version: string
): Entry | undefined {
  const done = all.filter(e => e.finalized && e.version === version).sort((a, b) => b.seq - a.seq)
  for (const k of [key, ...restoreKeys]) {
    const exact = done.find(e => e.key === k)
    if (exact) return exact
    const prefixed = done.find(e => e.key.startsWith(k))
    if (prefixed) return prefixed
  }
  return undefined
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      try {
        const text = Buffer.concat(chunks).toString() || '{}'
        resolve(JSON.parse(text) as Record<string, unknown>)
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    })
    req.on('error', reject)
  })
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
