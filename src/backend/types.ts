import type { StoreTrees } from '../store/pack-dir.js'
import type { TransferShape } from '../transfer/pool.js'

/** Where entries live. Every entry is one directory, archived whole. */
export interface Backend {
  readonly name: 'local' | 'github' | 's3'
  /** How its packs travel best: measured per backend (transfer/pool.ts). */
  readonly transfer: TransferShape
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

  // Retention (src/retention/): a small object store's list and delete.

  /** Every entry in the cache (ours or not: retention keeps to the keys it knows). */
  list(): Promise<Stored[]>
  /** Deletes one entry; one already gone is fine. */
  remove(key: string): Promise<void>
  /**
   * Records, cheaply, that `name` was used now: a dependency set's or an
   * attribute's key prefix when a restore used its entries, a pack's key when a
   * save names it again (so a prune's grace period covers it until the snapshot
   * naming it lands). Never rewrites the entry itself.
   */
  markUsed(name: string): Promise<void>
  /** The last-use marks, `key` being the name marked. */
  marks(): Promise<Stored[]>
  removeMark(group: string): Promise<void>
}

export interface Stored {
  key: string
  /** Bytes it takes in the cache. */
  bytes: number
  /** When it was saved or (marks) last used, in ms since the epoch. */
  modified: number
  /**
   * When it was saved, where `modified` also moves when it is read (GitHub's
   * last access): the order of a set's snapshots and their grace period.
   */
  created?: number
}

export interface SaveOptions {
  /** Replace an existing entry atomically (readers see the old or the new one). */
  replace?: boolean
  /** The bytes staged, for the transfer's deadline (input `stall-timeout`). */
  bytes?: number
  /** zstd threads, where the backend compresses (local, s3); default: one a core. */
  threads?: number
}

export interface SaveOutcome {
  result: 'saved' | 'exists'
  /** Compressed bytes written, where the backend knows them. */
  archiveBytes?: number
}
