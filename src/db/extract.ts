// Extracting the rows of a set of paths into a new database file (a pack's
// db.sqlite): their ValidPaths, their Refs, references to paths outside the set
// kept by path in ExternalRefs, their DerivationOutputs and Realisations.
import type Database from 'better-sqlite3'
import { NixDbError } from './errors.js'
import { attachSource, NixDb } from './nixdb.js'
import { mergeRealisations } from './realisations.js'
import { columnPlan, hasTable } from './schema.js'

export interface ExtractResult {
  paths: number
  refs: number
  externalRefs: number
  /** Sum of the paths' narSize. */
  narBytes: number
}

/**
 * Writes a new database at `outFile` holding exactly the rows of `paths` from the
 * database at `srcFile`, which is only read. Fails if a path is not valid there.
 */
export function extract(srcFile: string, paths: readonly string[], outFile: string): ExtractResult {
  const probe = NixDb.open(srcFile, { readonly: true })
  const ca = hasTable(probe.sql, 'main', 'Realisations')
  probe.close()

  const out = NixDb.create(outFile, { externalRefs: true, ca })
  const sql = out.sql
  try {
    attachSource(sql, srcFile)
    const result = sql.transaction(() => copyRows(sql, paths, ca))()
    sql.exec('DETACH DATABASE src')
    return result
  } finally {
    out.close()
  }
}

function copyRows(sql: Database.Database, paths: readonly string[], ca: boolean): ExtractResult {
  sql.exec('CREATE TEMP TABLE want (path TEXT PRIMARY KEY)')
  sql
    .prepare('INSERT OR IGNORE INTO want SELECT value FROM json_each(?)')
    .run(JSON.stringify(paths))
  const missing = sql
    .prepare('SELECT path FROM want WHERE path NOT IN (SELECT path FROM src.ValidPaths) LIMIT 3')
    .pluck()
    .all() as string[]
  if (missing.length > 0)
    throw new NixDbError(`cannot extract paths that are not valid: ${missing.join(', ')}`)

  const vp = columnPlan(sql, 'ValidPaths', { id: null })
  const n = sql
    .prepare(
      `INSERT INTO main.ValidPaths (${vp.into}) SELECT ${vp.select} FROM src.ValidPaths s
       WHERE s.path IN (SELECT path FROM want) ORDER BY s.id`
    )
    .run().changes
  sql.exec(`CREATE TEMP TABLE idmap (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
    INSERT INTO idmap SELECT s.id, m.id FROM src.ValidPaths s JOIN main.ValidPaths m ON m.path = s.path;`)

  const refs = sql
    .prepare(
      `INSERT INTO main.Refs (referrer, reference) SELECT a.dst, b.dst FROM src.Refs r
       JOIN idmap a ON a.src = r.referrer JOIN idmap b ON b.src = r.reference ORDER BY 1, 2`
    )
    .run().changes
  const externalRefs = sql
    .prepare(
      `INSERT INTO main.ExternalRefs (referrer, path) SELECT a.dst, v.path FROM src.Refs r
       JOIN idmap a ON a.src = r.referrer JOIN src.ValidPaths v ON v.id = r.reference
       WHERE r.reference NOT IN (SELECT src FROM idmap)`
    )
    .run().changes

  const dout = columnPlan(sql, 'DerivationOutputs', { drv: 'a.dst' })
  sql
    .prepare(
      `INSERT INTO main.DerivationOutputs (${dout.into}) SELECT ${dout.select}
       FROM src.DerivationOutputs s JOIN idmap a ON a.src = s.drv`
    )
    .run()

  if (ca) mergeRealisations(sql, [])
  const narBytes = sql
    .prepare('SELECT coalesce(sum(narSize), 0) FROM main.ValidPaths')
    .pluck()
    .get() as number
  return { paths: n, refs, externalRefs, narBytes }
}
