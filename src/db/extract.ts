// Extracting the rows of a set of paths into a new database file (a pack's
// db.sqlite): their ValidPaths, their Refs, references to paths outside the set
// kept by path in ExternalRefs, their DerivationOutputs and Realisations.
import type Database from 'better-sqlite3'
import { NixDbError } from './errors.js'
import { attachSource, NixDb } from './nixdb.js'
import { columns, hasTable } from './schema.js'

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

  const vp = shared(sql, 'ValidPaths').filter(c => c !== 'id')
  const n = sql
    .prepare(
      `INSERT INTO main.ValidPaths (${list(vp)}) SELECT ${list(vp, 's.')} FROM src.ValidPaths s
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

  const dout = shared(sql, 'DerivationOutputs').filter(c => c !== 'drv')
  sql
    .prepare(
      `INSERT INTO main.DerivationOutputs (drv, ${list(dout)}) SELECT a.dst, ${list(dout, 's.')}
       FROM src.DerivationOutputs s JOIN idmap a ON a.src = s.drv`
    )
    .run()

  if (ca) copyRealisations(sql)
  const narBytes = sql
    .prepare('SELECT coalesce(sum(narSize), 0) FROM main.ValidPaths')
    .pluck()
    .get() as number
  return { paths: n, refs, externalRefs, narBytes }
}

function copyRealisations(sql: Database.Database): void {
  const cols = shared(sql, 'Realisations').filter(c => c !== 'id' && c !== 'outputPath')
  sql.exec(`CREATE TEMP TABLE rmap (src INTEGER PRIMARY KEY, dst INTEGER);`)
  const insert = sql.prepare(
    `INSERT INTO main.Realisations (outputPath, ${list(cols)}) SELECT a.dst, ${list(cols, 's.')}
     FROM src.Realisations s JOIN idmap a ON a.src = s.outputPath ORDER BY s.id`
  )
  insert.run()
  sql.exec(`INSERT INTO rmap SELECT s.id, m.id FROM src.Realisations s
      JOIN main.Realisations m ON m.drvPath = s.drvPath AND m.outputName = s.outputName;
    INSERT INTO main.RealisationsRefs (referrer, realisationReference)
      SELECT a.dst, b.dst FROM src.RealisationsRefs r
      JOIN rmap a ON a.src = r.referrer JOIN rmap b ON b.src = r.realisationReference;`)
}

/** Columns of `table` that both the new database and the source have. */
function shared(sql: Database.Database, table: string): string[] {
  const src = new Set(columns(sql, 'src', table).map(c => c.name))
  return columns(sql, 'main', table)
    .map(c => c.name)
    .filter(c => src.has(c))
}

function list(cols: string[], prefix = ''): string {
  return cols.map(c => `${prefix}"${c}"`).join(', ')
}
