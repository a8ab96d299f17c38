// The database against the store folder: rows whose folder is gone, folders
// without rows, and the repair that makes the database claim only what is on disk.
import type Database from 'better-sqlite3'
import { readdirSync } from 'node:fs'
import { deleteWithDependents } from './dependents.js'
import { REFERRERS_CTE, type NixDb } from './nixdb.js'
import { isStoreName, STORE_DIR } from './paths.js'

export interface StoreCheck {
  /** Registered paths whose folder is missing: Nix would trust them and fail later. */
  missing: string[]
  /** Store folders with no row: Nix ignores them and builds or downloads them again. */
  unregistered: string[]
}

/** Compares the rows with the folder names in `storeDir` (the real folder on disk). */
export function checkStore(db: NixDb, storeDir: string): StoreCheck {
  loadDisk(db.sql, storeDir)
  try {
    const missing = db.sql
      .prepare(
        `SELECT path FROM ValidPaths WHERE substr(path, ?) NOT IN (SELECT name FROM temp.disk) ORDER BY path`
      )
      .pluck()
      .all(STORE_DIR.length + 2) as string[]
    const unregistered = db.sql
      .prepare(
        `SELECT ? || name FROM temp.disk WHERE ? || name NOT IN (SELECT path FROM ValidPaths) ORDER BY name`
      )
      .pluck()
      .all(`${STORE_DIR}/`, `${STORE_DIR}/`) as string[]
    return { missing, unregistered }
  } finally {
    db.sql.exec('DROP TABLE temp.disk')
  }
}

/**
 * Drops every row whose folder is missing, together with every path that refers
 * to it (directly or not), in one transaction, so the database never claims what
 * is not on disk: all of it or, when anything fails, nothing. Returns the dropped
 * paths, sorted.
 */
export function repair(db: NixDb, storeDir: string): string[] {
  const { missing } = checkStore(db, storeDir)
  if (missing.length === 0) return []
  const sql = db.sql
  return sql.transaction(() => {
    sql.exec('CREATE TEMP TABLE dropped (id INTEGER PRIMARY KEY)')
    try {
      sql
        .prepare(`${REFERRERS_CTE} INSERT INTO temp.dropped SELECT id FROM d`)
        .run(JSON.stringify(missing))
      const paths = sql
        .prepare(
          'SELECT path FROM ValidPaths WHERE id IN (SELECT id FROM temp.dropped) ORDER BY path'
        )
        .pluck()
        .all() as string[]
      // Refs, DerivationOutputs, Realisations and RealisationsRefs (and whatever a
      // newer Nix adds) go before the paths they refer to.
      deleteWithDependents(sql, 'ValidPaths', 'id IN (SELECT id FROM temp.dropped)')
      return paths
    } finally {
      sql.exec('DROP TABLE temp.dropped')
    }
  })()
}

function loadDisk(sql: Database.Database, storeDir: string): void {
  let names: string[] = []
  try {
    names = readdirSync(storeDir).filter(isStoreName)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  sql.exec('CREATE TEMP TABLE disk (name TEXT PRIMARY KEY)')
  sql
    .prepare('INSERT OR IGNORE INTO temp.disk SELECT value FROM json_each(?)')
    .run(JSON.stringify(names))
}
