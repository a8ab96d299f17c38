// The github backend: the Actions cache through @actions/cache (protocol v2).
// Entries are staged at paths relative to the workspace, the same strings on
// every runner (`.nix-store-cache/<slot>`), so they extract to the same place
// whatever the workspace's depth (actions/cache#1127) and the entry's version
// (a hash of the path strings) matches: an entry is restored through the slot
// it was saved from.
import * as cache from '@actions/cache'
import { join, relative } from 'node:path'
import { CacheError } from '../errors.js'
import { materialize, type StoreTrees } from '../store/pack-dir.js'
import { CacheApi, type ApiAccess } from './github-api.js'
import type { Backend, SaveOutcome, Stored } from './types.js'

export const STAGE_REL = '.nix-store-cache'
const SEGMENT_TIMEOUT_MS = 5 * 60_000

export class GithubBackend implements Backend {
  readonly name = 'github'
  /** Entries are immutable; deleting one needs a token (REST API). */
  readonly canReplace = false
  readonly stageRoot: string
  constructor(
    readonly workspace: string,
    /** Test seam: how long to wait for a pack another job is uploading. */
    private readonly waitMs = 2000,
    /**
     * A call that comes back empty after longer than this met a failing service:
     * @actions/cache retries a 5xx for about 25 s; an answer, even on a busy
     * runner, takes a second or two.
     */
    private readonly slowMs = 15_000,
    /** The REST API, for retention: only with a token. */
    access?: ApiAccess
  ) {
    this.stageRoot = join(workspace, STAGE_REL)
    if (access?.token) this.api = new CacheApi(access)
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
    return this.call(
      // A download that stalls is given up after five minutes, not the default hour.
      () =>
        cache.restoreCache([rel], primaryKey, [...prefixes], {
          segmentTimeoutInMs: SEGMENT_TIMEOUT_MS
        }),
      found => found === undefined
    )
  }

  async save(dir: string, key: string, trees?: StoreTrees): Promise<SaveOutcome> {
    const rel = this.slotOf(dir)
    // A pack's key names its paths: asking first can spare a whole upload.
    // Snapshot and index keys are new every time: asking would be a wasted round trip.
    if (trees && (await this.has(rel, key))) return { result: 'exists' }
    // @actions/cache archives paths under the workspace only.
    if (trees) await materialize(dir, trees)
    const id = await this.call(
      () => cache.saveCache([rel], key),
      r => r === -1
    )
    // @actions/cache does not say how large the archive was.
    if (id !== -1) return { result: 'saved' }
    // -1: @actions/cache already said why (info when another job is creating the
    // key, a warning on a service error). The first case is fine once it lands.
    const deadline = Date.now() + this.waitMs
    do {
      if (await this.has(rel, key)) return { result: 'exists' }
      await new Promise(r => setTimeout(r, 250))
    } while (Date.now() < deadline)
    throw new CacheError(`the cache service did not store ${key}`)
  }

  private async has(rel: string, key: string): Promise<boolean> {
    const found = await this.call(
      () => cache.restoreCache([rel], key, [], { lookupOnly: true }),
      r => r === undefined
    )
    return found === key
  }

  /**
   * One @actions/cache call. It reports a failing service (5xx, 429, a stall)
   * only as its own warning and a miss, after retrying for a while: a miss or a
   * refusal that took longer than any answer does is that, and the job makes no
   * more calls, so a failing service costs it one call's retries, not one per
   * pack and entry.
   */
  private async call<T>(f: () => Promise<T>, missed: (r: T) => boolean): Promise<T> {
    if (this.failing) throw new CacheError(this.failing)
    const start = Date.now()
    const r = await this.inWorkspace(f)
    const ms = Date.now() - start
    if (missed(r) && ms > this.slowMs) {
      this.failing =
        `the cache service failed or stalled (a call took ${Math.round(ms / 1000)} s and came back empty); ` +
        'no more cache calls in this job'
      throw new CacheError(this.failing)
    }
    return r
  }

  private failing: string | undefined

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
