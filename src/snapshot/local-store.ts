// The runner's own store and database during a restore: placing packs, repairing
// rows without folders, reading the watermark.
import { existsSync, readdirSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isStoreName, merge, NixDb, repair } from '../db/index.js'
import { CacheError } from '../errors.js'
import type { Logger } from '../log.js'
import { moveEntry } from '../store/fsops.js'
import { baseName, type Layout } from '../store/layout.js'
import { storeOf } from '../store/pack-dir.js'
import type { Fetched } from './fetch.js'

/**
 * Moves a checked pack's paths into the store, then merges its rows in one
 * transaction, so rows never exist without their folders; a failure moves the
 * folders back. A path this store already has (a row) keeps its own files. A
 * folder without a row (a leftover, or nix-portable's unregistered bootstrap) is
 * replaced: its files are unknown, and registering them would trust them.
 */
export async function placePack(lay: Layout, f: Fetched, log: Logger): Promise<number> {
  await mkdir(lay.storeDir, { recursive: true })
  const db = NixDb.open(lay.dbFile)
  const displacedDir = join(f.dir, 'displaced')
  const moved: string[] = []
  const displaced: string[] = []
  try {
    const valid = new Set(db.validAmong(f.info.paths))
    const names = f.info.paths.filter(p => !valid.has(p)).map(baseName)
    for (const n of names) {
      const target = join(lay.storeDir, n)
      if (existsSync(target)) {
        await mkdir(displacedDir, { recursive: true })
        await moveEntry(target, join(displacedDir, n))
        displaced.push(n)
      }
      await moveEntry(join(storeOf(f.dir), n), target)
      moved.push(n)
    }
    const merged = merge(db, join(f.dir, 'db.sqlite'))
    for (const what of merged.skipped) log.warning(`Pack ${f.ref.key}: not merged: ${what}`)
    return merged.pathsAdded
  } catch (e) {
    for (const n of moved.reverse()) await moveEntry(join(lay.storeDir, n), join(storeOf(f.dir), n))
    for (const n of displaced) await moveEntry(join(displacedDir, n), join(lay.storeDir, n))
    throw e
  } finally {
    db.close()
  }
}

/**
 * Makes sure the location has a database with every table the packs' rows need,
 * made or migrated by the location's own Nix (`initDb`): a database we wrote
 * ourselves would be some Nix version's idea of the schema, not this one's.
 */
export async function prepareDb(
  lay: Layout,
  fetched: readonly Fetched[],
  initDb: (ca: boolean) => Promise<void>
): Promise<void> {
  if (fetched.length === 0) return
  const ca = fetched.some(f => f.realisations)
  /** What the database lacks for these packs; undefined when nothing. */
  const lacking = (): string | undefined => {
    if (!existsSync(lay.dbFile)) return `there is no database at ${lay.dbFile}`
    if (ca && !NixDb.with(lay.dbFile, { readonly: true }, db => db.hasTable('Realisations'))) {
      return 'the packs hold content-addressed outputs, but the database has no Realisations table (ca-derivations)'
    }
    return undefined
  }
  if (lacking() === undefined) return
  await initDb(ca)
  const still = lacking()
  if (still !== undefined) throw new CacheError(`after nix-portable's nix-store --init, ${still}`)
}

/**
 * A row whose folder is gone makes Nix fail later, and `nix-store --verify`
 * cannot fix it: drop such rows with their referrers before restoring, so the
 * paths come back from the cache (or get rebuilt) instead. Not when the store
 * folder is missing or empty: then the layout, not the store, is wrong.
 */
export function repairLocal(lay: Layout, log: Logger): void {
  if (!existsSync(lay.dbFile) || !existsSync(lay.storeDir)) return
  if (readdirSync(lay.storeDir).filter(isStoreName).length === 0) return
  const dropped = NixDb.with(lay.dbFile, {}, db => repair(db, lay.storeDir))
  if (dropped.length > 0) {
    log.warning(
      `${dropped.length} registered path(s) had no folder or referred to one that had none ` +
        `(e.g. ${dropped[0]}): dropped their rows so that Nix does not trust them.`
    )
  }
}

export function currentWatermark(lay: Layout): number {
  if (!existsSync(lay.dbFile)) return 0
  return NixDb.with(lay.dbFile, { readonly: true }, db => db.watermark())
}

export function validAmong(lay: Layout, paths: string[]): string[] {
  if (!existsSync(lay.dbFile)) return []
  return NixDb.with(lay.dbFile, { readonly: true }, db => db.validAmong(paths))
}
