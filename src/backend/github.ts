// The github backend: the Actions cache through @actions/cache (protocol v2).
// Entries are staged at one path relative to the workspace, the same string on
// every runner, so they extract to the same place whatever the workspace's depth
// (actions/cache#1127) and the entry's version (a hash of the path strings) matches.
import * as cache from '@actions/cache'
import { join } from 'node:path'
import { CacheError } from '../errors.js'
import { materialize, type StoreTrees } from '../store/pack-dir.js'
import type { Backend, SaveOutcome } from './types.js'

export const STAGE_REL = '.nix-store-cache'
const ENTRY_REL = `${STAGE_REL}/entry`

export class GithubBackend implements Backend {
  readonly name = 'github'
  /** Entries are immutable; deleting one needs a token (REST API). */
  readonly canReplace = false
  readonly stageRoot: string
  constructor(
    readonly workspace: string,
    /** Test seam: how long to wait for a pack another job is uploading. */
    private readonly waitMs = 2000
  ) {
    this.stageRoot = join(workspace, STAGE_REL)
  }

  /** The one directory entries go through: `dir` arguments must be it. */
  get entryDir(): string {
    return join(this.workspace, ENTRY_REL)
  }

  /** One job a workspace: restore clears the stage folder itself. */
  async sweep(): Promise<void> {}

  async restore(
    dir: string,
    primaryKey: string,
    prefixes: readonly string[]
  ): Promise<string | undefined> {
    this.assertEntryDir(dir)
    return this.inWorkspace(() => cache.restoreCache([ENTRY_REL], primaryKey, [...prefixes]))
  }

  async save(dir: string, key: string, trees?: StoreTrees): Promise<SaveOutcome> {
    this.assertEntryDir(dir)
    if (await this.has(key)) return { result: 'exists' }
    // @actions/cache archives paths under the workspace only.
    if (trees) await materialize(dir, trees)
    const id = await this.inWorkspace(() => cache.saveCache([ENTRY_REL], key))
    // @actions/cache does not say how large the archive was.
    if (id !== -1) return { result: 'saved' }
    // -1: @actions/cache already said why (info when another job is creating the
    // key, a warning on a service error). The first case is fine once it lands.
    const deadline = Date.now() + this.waitMs
    do {
      if (await this.has(key)) return { result: 'exists' }
      await new Promise(r => setTimeout(r, 250))
    } while (Date.now() < deadline)
    throw new CacheError(`the cache service did not store ${key}`)
  }

  private async has(key: string): Promise<boolean> {
    const found = await this.inWorkspace(() =>
      cache.restoreCache([ENTRY_REL], key, [], { lookupOnly: true })
    )
    return found === key
  }

  private assertEntryDir(dir: string): void {
    if (dir !== this.entryDir)
      throw new Error(`internal: github entries must be staged in ${this.entryDir}`)
  }

  /** @actions/cache globs relative paths from the working directory. */
  private async inWorkspace<T>(f: () => Promise<T>): Promise<T> {
    const before = process.cwd()
    process.chdir(this.workspace)
    try {
      return await f()
    } finally {
      process.chdir(before)
    }
  }
}
