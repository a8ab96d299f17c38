// The github backend: the Actions cache through @actions/cache (protocol v2).
// Entries are staged at paths relative to the workspace, the same strings on
// every runner (`.nix-store-cache/<slot>`), so they extract to the same place
// whatever the workspace's depth (actions/cache#1127) and the entry's version
// (a hash of the path strings) matches: an entry is restored through the slot
// it was saved from.
import * as cache from '@actions/cache'
import { mkdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { CacheError } from '../errors.js'
import { materialize, type StoreTrees } from '../store/pack-dir.js'
import { Breaker } from '../transfer/breaker.js'
import { CacheApi, type ApiAccess } from './github-api.js'
import type { Backend, SaveOptions, SaveOutcome, Stored } from './types.js'
import { DISTANT } from '../transfer/pool.js'

export const STAGE_REL = '.nix-store-cache'
const SEGMENT_TIMEOUT_MS = 5 * 60_000

export interface GithubOptions {
  /** Test seam: how long to wait for a pack another job is uploading. */
  waitMs?: number
  /**
   * A call that comes back empty after longer than this met a failing service:
   * @actions/cache gives up a silent download after 5 s and retries a 5xx for
   * about 25 s; an answer (a miss), even on a busy runner, takes a second.
   */
  slowMs?: number
  /**
   * A call not done this long after its bytes at 1 MiB/s would be has stalled
   * (input `stall-timeout`): @actions/cache bounds a download's silence, not an
   * upload's, and its calls cannot be cancelled, only left behind.
   */
  stallMs?: number
  /** The REST API, for retention: only with a token. */
  access?: ApiAccess
}

export class GithubBackend implements Backend {
  readonly name = 'github'
  readonly transfer = DISTANT
  /** Entries are immutable; deleting one needs a token (REST API). */
  readonly canReplace = false
  readonly stageRoot: string
  private readonly waitMs: number
  private readonly slowMs: number
  private readonly breaker: Breaker
  constructor(
    readonly workspace: string,
    o: GithubOptions = {}
  ) {
    this.stageRoot = join(workspace, STAGE_REL)
    this.waitMs = o.waitMs ?? 2000
    this.slowMs = o.slowMs ?? 4000
    this.breaker = new Breaker(o.stallMs ?? 60_000)
    if (o.access?.token) this.api = new CacheApi(o.access)
  }

  private readonly api: CacheApi | undefined

  /** Listing needs the REST API, so a token (input `token`). */
  async list(): Promise<Stored[]> {
    return this.needApi().list()
  }

  async remove(key: string): Promise<void> {
    await this.needApi().remove(key)
  }

  /** Nothing to write: GitHub records each entry's last access (restores and lookups) itself. */
  async markUsed(): Promise<void> {}

  async marks(): Promise<Stored[]> {
    return []
  }

  async removeMark(): Promise<void> {}

  private needApi(): CacheApi {
    if (!this.api)
      throw new CacheError('listing or deleting GitHub cache entries needs the input `token`')
    return this.api
  }

  slotDir(slot: string): string {
    return join(this.workspace, STAGE_REL, slot)
  }

  /** One job a workspace: restore clears the stage folder itself. */
  async sweep(): Promise<void> {}

  async restore(
    dir: string,
    primaryKey: string,
    prefixes: readonly string[]
  ): Promise<string | undefined> {
    const rel = this.slotOf(dir)
    // Side by side, tar processes that each had to create the missing
    // `.nix-store-cache` folder raced, and one failed ("Cannot mkdir"): the
    // entry looked missing. Each now finds it there.
    await mkdir(this.stageRoot, { recursive: true })
    return this.call(
      `the restore of ${primaryKey}`,
      // Its size unknown and its progress unseen: the deadline allows a whole pack.
      this.transfer.packBytes,
      // A download that stalls is given up after five minutes, not the default hour.
      () =>
        cache.restoreCache([rel], primaryKey, [...prefixes], {
          segmentTimeoutInMs: SEGMENT_TIMEOUT_MS
        }),
      found => found === undefined
    )
  }

  async save(
    dir: string,
    key: string,
    trees?: StoreTrees,
    o: SaveOptions = {}
  ): Promise<SaveOutcome> {
    const rel = this.slotOf(dir)
    // No lookup first: a key that exists is refused when reserved (a 409), so
    // asking would cost every new pack a round trip to spare a known one its
    // compression (`npm run bench:github`).
    // @actions/cache archives paths under the workspace only.
    if (trees) await materialize(dir, trees)
    const id = await this.call(
      `the save of ${key}`,
      o.bytes ?? 0,
      () => cache.saveCache([rel], key),
      r => r === -1
    )
    // @actions/cache does not say how large the archive was.
    if (id !== -1) return { result: 'saved' }
    // -1: @actions/cache already said why (info when the key exists or another
    // job is creating it, a warning on a service error). The first is fine once
    // the entry is there.
    const deadline = Date.now() + this.waitMs
    do {
      if (await this.has(rel, key)) return { result: 'exists' }
      await new Promise(r => setTimeout(r, 250))
    } while (Date.now() < deadline)
    throw new CacheError(`the cache service did not store ${key}`)
  }

  private async has(rel: string, key: string): Promise<boolean> {
    const found = await this.call(
      `the lookup of ${key}`,
      0,
      () => cache.restoreCache([rel], key, [], { lookupOnly: true }),
      r => r === undefined
    )
    return found === key
  }

  /**
   * One @actions/cache call, of `what`, moving about `bytes`, under the
   * breaker's deadline. @actions/cache reports a failing service (5xx, 429)
   * only as its own warning and a miss, after retrying for a while: a miss or
   * a refusal that took longer than any answer does is that, and opens the
   * breaker too, so a failing service costs the job one call's retries, not
   * one per pack and entry.
   */
  private async call<T>(
    what: string,
    bytes: number,
    f: () => Promise<T>,
    missed: (r: T) => boolean
  ): Promise<T> {
    const start = Date.now()
    const r = await this.inWorkspace(() => this.breaker.run(what, bytes, f))
    const ms = Date.now() - start
    if (missed(r) && ms > this.slowMs) {
      this.breaker.trip(
        `the cache service failed or stalled (a call took ${Math.round(ms / 1000)} s and came back empty)`
      )
    }
    return r
  }

  /** `dir`'s path from the workspace, which must be a slot's. */
  private slotOf(dir: string): string {
    const rel = relative(this.workspace, dir)
    if (!/^\.nix-store-cache\/[A-Za-z0-9._-]+$/.test(rel))
      throw new Error(`internal: github entries are staged in ${STAGE_REL}/<slot>, not ${dir}`)
    return rel
  }

  /**
   * @actions/cache globs relative paths from the working directory: the first
   * transfer moves there, the last moves back (transfers run side by side).
   */
  private async inWorkspace<T>(f: () => Promise<T>): Promise<T> {
    if (this.inside++ === 0) {
      this.before = process.cwd()
      process.chdir(this.workspace)
    }
    try {
      return await f()
    } finally {
      if (--this.inside === 0) process.chdir(this.before)
    }
  }

  private inside = 0
  private before = ''
}
