import type { StoreTrees } from '../store/pack-dir.js'

/** Where entries live. Every entry is one directory, archived whole. */
export interface Backend {
  readonly name: 'local' | 'github' | 's3'
  /** A folder for our staging, on the same filesystem as the slots. */
  readonly stageRoot: string
  /**
   * A staging folder of its own for `slot` (`entry` for snapshots, indexSlot()
   * for index entries, packSlot() for packs), so that
   * transfers run side by side; the github backend derives the entry's version
   * from it, so an entry is restored through the slot it was saved from.
   */
  slotDir(slot: string): string
  /**
   * Restores into `dir` (empty) the entry whose key is `primaryKey`, else the
   * newest whose key starts with `primaryKey`, then with each of `prefixes`.
   * Returns the matched key, or undefined on a miss.
   */
  restore(dir: string, primaryKey: string, prefixes: readonly string[]): Promise<string | undefined>
  /** Removes staging left behind by jobs that are gone (a cancelled job, a crash). */
  sweep(): Promise<void>
  /**
   * Saves `dir`, plus `trees` as `store/<name>` when given, as `key`. An existing
   * key is left as it is, unless `replace` and the backend canReplace.
   */
  save(dir: string, key: string, trees?: StoreTrees, o?: SaveOptions): Promise<SaveOutcome>
  /** Whether save can replace an existing entry (a broken one) under its own key. */
  readonly canReplace: boolean
}

export interface SaveOptions {
  /** Replace an existing entry atomically (readers see the old or the new one). */
  replace?: boolean
}

export interface SaveOutcome {
  result: 'saved' | 'exists'
  /** Compressed bytes written, where the backend knows them. */
  archiveBytes?: number
}
