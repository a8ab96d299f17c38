// The Actions cache service (v2), spoken directly for the one thing
// @actions/cache cannot do: stream. Its restoreCache downloads a whole archive to
// a file before extracting it, and saveCache compresses a whole archive to a
// file before uploading it; here a download runs through zstd into tar as it
// arrives, and an upload leaves tar | zstd as it is made. The calls are the
// toolkit's: its HTTP client (proxies, user agent, the runtime token), the
// service's three twirp methods, @azure/storage-blob for the upload (as
// @actions/cache does), and @actions/cache's own entry versions and archive
// layout, so entries saved either way are one cache.
import { debug } from '@actions/core'
import { HttpClient, type HttpClientResponse } from '@actions/http-client'
import { BearerCredentialHandler } from '@actions/http-client/lib/auth'
import { BlockBlobClient } from '@azure/storage-blob'
import { createHash } from 'node:crypto'
import { CacheError, message } from '../errors.js'
import type { Progress } from '../transfer/breaker.js'
import { createArchive, extractArchive } from '../transfer/archive.js'

const SERVICE = 'twirp/github.actions.results.api.v1.CacheService'
/** @actions/cache's compression method for zstd and its version salt (getCacheVersion). */
const VERSION_PARTS = ['zstd-without-long', '1.0']
/** Tries of a call the service answered with a 5xx or never answered, and the first pause. */
const TRIES = 3
const PAUSE_MS = 1000
/** Upload blocks and blocks in flight, per entry (@actions/cache: 64 MiB, 8, from a file). */
const BLOCK = 8 * 1024 * 1024
const BLOCKS_IN_FLIGHT = 4

/** The service's environment, when this runner's cache service is v2; else undefined. */
export function serviceV2(env: NodeJS.ProcessEnv = process.env): ServiceEnv | undefined {
  const url = env.ACTIONS_RESULTS_URL
  const token = env.ACTIONS_RUNTIME_TOKEN
  if (!env.ACTIONS_CACHE_SERVICE_V2 || !url || !token) return undefined
  return { url, token }
}

export interface ServiceEnv {
  url: string
  token: string
}

/** The version @actions/cache gives an entry of `paths` (getCacheVersion, zstd, not Windows). */
export function entryVersion(paths: readonly string[]): string {
  return createHash('sha256')
    .update([...paths, ...VERSION_PARTS].join('|'))
    .digest('hex')
}

/** The service failed (5xx, 429, no answer): the caller opens its breaker. */
export class ServiceFailure extends CacheError {
  override name = 'ServiceFailure'
}

export class CacheServiceV2 {
  private readonly http: HttpClient

  constructor(
    private readonly env: ServiceEnv,
    /**
     * Input `stall-timeout`: the caller's breaker gives a call up past it. A
     * request (which http-client cannot cancel) is dropped once silent for
     * twice that, so none is left behind for good.
     */
    stallMs: number
  ) {
    this.http = new HttpClient('nix-store-cache', [new BearerCredentialHandler(env.token)], {
      socketTimeout: 2 * stallMs
    })
  }

  /**
   * The entry `key` of `version`, else the newest whose key starts with one of
   * `prefixes`: its key and download URL, or undefined on a miss.
   */
  async lookup(
    key: string,
    prefixes: readonly string[],
    version: string
  ): Promise<{ key: string; url: string } | undefined> {
    const r = await this.twirp('GetCacheEntryDownloadURL', {
      key,
      restore_keys: prefixes,
      version
    })
    if (r.body.ok !== true) return undefined
    const url = String(r.body.signed_download_url ?? '')
    const matched = String(r.body.matched_key ?? '')
    if (!url || !matched)
      throw new ServiceFailure('the cache service found an entry but gave no URL')
    return { key: matched, url }
  }

  /** Streams the archive at `url` into `tar -x <tarArgs>`. */
  async download(
    url: string,
    tarArgs: readonly string[],
    signal: AbortSignal,
    progress: Progress
  ): Promise<void> {
    const res = await this.tries('the download', signal, () => this.http.get(url))
    const status = res.message.statusCode ?? 0
    if (status !== 200) {
      // This entry's blob only (gone, or not ours to read): not the whole service failing.
      throw new CacheError(
        `the download answered HTTP ${status}: ${(await res.readBody()).slice(0, 200)}`
      )
    }
    debug(`cache service: downloading ${res.message.headers['content-length'] ?? '?'} bytes`)
    try {
      await extractArchive(res.message, tarArgs, signal, progress)
    } catch (e) {
      // A connection that broke off is the service's fault; an archive that
      // does not extract is the entry's (a broken entry, replaced on save).
      if (brokeOff(e)) throw new ServiceFailure(`the download broke off (${message(e)})`)
      throw e
    }
  }

  /**
   * Uploads `tar -c <tarArgs> | zstd` as the entry `key` of `version`, or
   * returns 'taken' when the service refuses the key (it exists, or another
   * job is saving it). Returns the compressed bytes.
   */
  async upload(
    key: string,
    version: string,
    tarArgs: readonly string[],
    signal: AbortSignal,
    progress: Progress
  ): Promise<number | 'taken'> {
    const created = await this.twirp('CreateCacheEntry', { key, version }, [409])
    if (created.status === 409 || created.body.ok !== true) return 'taken'
    const url = String(created.body.signed_upload_url ?? '')
    if (!url) throw new ServiceFailure('the cache service gave no upload URL')
    const archive = createArchive(tarArgs, signal)
    const uploaded = new BlockBlobClient(url)
      .uploadStream(archive.stream, BLOCK, BLOCKS_IN_FLIGHT, {
        abortSignal: signal,
        onProgress: progress
      })
      .catch((e: unknown) => {
        throw new ServiceFailure(`the upload failed (${message(e)})`)
      })
    try {
      // tar failing (a file gone meanwhile) is ours to report, not the service's.
      await Promise.all([uploaded, archive.done])
    } catch (e) {
      archive.kill()
      uploaded.catch(() => undefined)
      throw e
    }
    const size = archive.bytes()
    debug(`cache service: uploaded ${size} bytes of ${key}`)
    const done = await this.twirp('FinalizeCacheEntryUpload', { key, version, size_bytes: size })
    if (done.body.ok !== true) throw new ServiceFailure(`the cache service did not store ${key}`)
    return size
  }

  /** One twirp call; a status in `accept` is an answer, not a failure. */
  private async twirp(
    method: string,
    body: Record<string, unknown>,
    accept: readonly number[] = []
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const url = new URL(`${SERVICE}/${method}`, this.env.url.replace(/\/?$/, '/')).href
    const res = await this.tries(method, undefined, () =>
      this.http.post(url, JSON.stringify(body), { 'Content-Type': 'application/json' })
    )
    const status = res.message.statusCode ?? 0
    const text = await res.readBody()
    debug(`cache service: ${method} ${String(body.key)}: HTTP ${status}`)
    if (status !== 200 && !accept.includes(status))
      throw new ServiceFailure(`${method} answered HTTP ${status}: ${text.slice(0, 200)}`)
    try {
      return { status, body: JSON.parse(text) as Record<string, unknown> }
    } catch {
      throw new ServiceFailure(
        `${method} answered something other than JSON: ${text.slice(0, 200)}`
      )
    }
  }

  /**
   * `f` until the service answers other than with a 5xx, TRIES times, pausing
   * PAUSE_MS and then twice that; a 429 is not retried (the service asks for
   * fewer calls, not more). Returns the response, its body unread.
   */
  private async tries(
    what: string,
    signal: AbortSignal | undefined,
    f: () => Promise<HttpClientResponse>
  ): Promise<HttpClientResponse> {
    let why = ''
    for (let attempt = 0; attempt < TRIES; attempt++) {
      if (attempt > 0) await new Promise(r => setTimeout(r, PAUSE_MS * 2 ** (attempt - 1)))
      if (signal?.aborted) break
      let res: HttpClientResponse
      try {
        res = await f()
      } catch (e) {
        why = message(e)
        continue
      }
      const status = res.message.statusCode ?? 0
      if (status === 429) {
        await res.readBody()
        throw new ServiceFailure(`${what} was refused: rate limited (HTTP 429)`)
      }
      if (status < 500) return res
      why = `HTTP ${status}: ${(await res.readBody()).slice(0, 200)}`
    }
    throw new ServiceFailure(`${what} failed after ${TRIES} tries (${why})`)
  }
}

/** Whether a download's error is its connection breaking off, not tar refusing the archive. */
function brokeOff(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code
  return code === 'ECONNRESET' || code === 'ETIMEDOUT' || message(e) === 'aborted'
}
