// Merging another Nix database into this one, entirely inside SQLite: attach,
// check, INSERT … SELECT with ids remapped through `path`, one transaction.
import type Database from 'better-sqlite3'
import { NixDbError } from './errors.js'
import { assertSqliteFile, attachSource, wrapSqliteError, type NixDb } from './nixdb.js'
import { mergeRealisations } from './realisations.js'
import { checkTables, columnPlan, hasTable } from './schema.js'

export interface MergeResult {
  pathsAdded: number
  refsAdded: number
  outputsAdded: number
  realisationsAdded: number
  /** Tables the source has that were not merged, with the reason. */
  skipped: string[]
}

/** Test hook: runs inside the transaction after the paths are inserted. */
export type FaultHook = (step: string) => void

/**
 * Merges the Nix database (or pack database) `srcFile` into `db`. Paths `db` already
 * has keep their own rows; new paths get their rows, references and derivation
 * outputs. Either all of it happens or nothing does. Refuses, touching nothing, a
 * source that is not a Nix database, holds malformed store paths, dangling ids, or
 * references paths that are neither in it nor valid in `db`.
 */
export function merge(db: NixDb, srcFile: string, fault?: FaultHook): MergeResult {
  assertSqliteFile(srcFile)
  const sql = db.sql
  attachSource(sql, srcFile)
  // Every id written below comes from a join with main.ValidPaths inside the same
  // transaction, so the foreign keys hold by construction; checking them row by
  // row doubles the time of a large merge. (The pragma is a no-op inside a
  // transaction, hence here.)
  sql.pragma('foreign_keys = OFF')
  try {
    checkTables(sql, 'src', srcFile)
    return sql.transaction(() => mergeAttached(sql, srcFile, fault)).immediate()
  } catch (e) {
    throw wrapSqliteError(e, srcFile)
  } finally {
    sql.exec('DROP TABLE IF EXISTS temp.idmap; DROP TABLE IF EXISTS temp.rmap')
    sql.exec('DETACH DATABASE src')
    sql.pragma('foreign_keys = ON')
  }
}

function mergeAttached(sql: Database.Database, srcFile: string, fault?: FaultHook): MergeResult {
  validateSource(sql, srcFile)
  const before = sql
    .prepare('SELECT coalesce(max(id), 0) FROM main.ValidPaths')
    .pluck()
    .get() as number
  const skipped: string[] = []

  const vp = columnPlan(sql, 'ValidPaths', { id: null })
  const pathsAdded = sql
    .prepare(
      `INSERT INTO main.ValidPaths (${vp.into}) SELECT ${vp.select} FROM src.ValidPaths s
       WHERE NOT EXISTS (SELECT 1 FROM main.ValidPaths m WHERE m.path = s.path) ORDER BY s.id`
    )
    .run().changes
  // Checked on the rows just written (hot pages, new rows only); a throw rolls back.
  refuse(
    srcFile,
    'malformed store paths',
    sql,
    `SELECT quote(path) FROM main.ValidPaths WHERE id > ${before} AND nix_bad_path(path)`
  )
  fault?.('paths')

  sql.exec(`CREATE TEMP TABLE idmap (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
    INSERT INTO idmap SELECT s.id, m.id FROM src.ValidPaths s JOIN main.ValidPaths m ON m.path = s.path;`)

  // References of new paths only: a path we had keeps its own rows. A reference
  // to a row the source lacks maps to NULL, which Refs' NOT NULL refuses.
  let refsAdded = insertRefs(sql, srcFile, before)
  if (hasTable(sql, 'src', 'ExternalRefs')) {
    refsAdded += sql
      .prepare(
        `INSERT OR IGNORE INTO main.Refs (referrer, reference)
         SELECT a.dst, m.id FROM src.ExternalRefs e
         JOIN idmap a ON a.src = e.referrer JOIN main.ValidPaths m ON m.path = e.path
         WHERE a.dst > ?`
      )
      .run(before).changes
  }
  fault?.('refs')

  const dout = columnPlan(sql, 'DerivationOutputs', { drv: 'a.dst' })
  const outputsAdded = sql
    .prepare(
      `INSERT OR IGNORE INTO main.DerivationOutputs (${dout.into})
       SELECT ${dout.select} FROM src.DerivationOutputs s JOIN idmap a ON a.src = s.drv`
    )
    .run().changes

  const realisationsAdded = mergeRealisations(sql, skipped)
  fault?.('done')
  return { pathsAdded, refsAdded, outputsAdded, realisationsAdded, skipped }
}

function insertRefs(sql: Database.Database, srcFile: string, before: number): number {
  try {
    return sql
      .prepare(
        `INSERT INTO main.Refs (referrer, reference)
         SELECT a.dst, b.dst FROM idmap a
         JOIN src.Refs r ON r.referrer = a.src LEFT JOIN idmap b ON b.src = r.reference
         WHERE a.dst > ? ORDER BY a.dst, b.dst`
      )
      .run(before).changes
  } catch (e) {
    if ((e as { code?: unknown }).code === 'SQLITE_CONSTRAINT_NOTNULL') {
      throw new NixDbError(`${srcFile} has references to missing rows; nothing was merged`)
    }
    throw e
  }
}

/** Throws, naming a few examples, when `query` returns rows. */
function refuse(srcFile: string, what: string, sql: Database.Database, query: string): void {
  const examples = sql.prepare(`${query} LIMIT 3`).pluck().all() as string[]
  if (examples.length > 0) {
    throw new NixDbError(`${srcFile} has ${what} (e.g. ${examples.join(', ')}); nothing was merged`)
  }
}

/** What can be found wrong with the source before a single row is written. */
function validateSource(sql: Database.Database, srcFile: string): void {
  refuse(
    srcFile,
    'derivation outputs with malformed store paths',
    sql,
    'SELECT quote(path) FROM src.DerivationOutputs WHERE nix_bad_path(path)'
  )
  if (hasTable(sql, 'src', 'ExternalRefs')) {
    refuse(
      srcFile,
      'references to paths that are neither in it nor valid here',
      sql,
      `SELECT DISTINCT e.path FROM src.ExternalRefs e
       WHERE NOT EXISTS (SELECT 1 FROM main.ValidPaths m WHERE m.path = e.path)
         AND NOT EXISTS (SELECT 1 FROM src.ValidPaths s WHERE s.path = e.path)`
    )
  }
}
