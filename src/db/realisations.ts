// Realisations (ca-derivations): which output path a content-addressed
// derivation's output resolved to. Copied with outputPath remapped through the
// temp `idmap` (source id -> target id) that the caller has filled.
import type Database from 'better-sqlite3'
import { columnPlan, hasTable } from './schema.js'

/** Realisations (ca-derivations), merged when both sides have the tables. */
export function mergeRealisations(sql: Database.Database, skipped: string[]): number {
  if (!hasTable(sql, 'src', 'Realisations')) return 0
  if (!hasTable(sql, 'main', 'Realisations')) {
    skipped.push('Realisations (this Nix store has no ca-derivations tables)')
    return 0
  }
  const before = sql
    .prepare('SELECT coalesce(max(id), 0) FROM main.Realisations')
    .pluck()
    .get() as number
  const plan = columnPlan(sql, 'Realisations', { id: null, outputPath: 'a.dst' })
  const added = sql
    .prepare(
      `INSERT INTO main.Realisations (${plan.into})
       SELECT ${plan.select} FROM src.Realisations s JOIN idmap a ON a.src = s.outputPath
       WHERE NOT EXISTS (SELECT 1 FROM main.Realisations m
                         WHERE m.drvPath = s.drvPath AND m.outputName = s.outputName)
       ORDER BY s.id`
    )
    .run().changes
  if (hasTable(sql, 'src', 'RealisationsRefs') && hasTable(sql, 'main', 'RealisationsRefs')) {
    sql.exec(`CREATE TEMP TABLE rmap (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
      INSERT OR IGNORE INTO rmap SELECT s.id, m.id FROM src.Realisations s
        JOIN main.Realisations m ON m.drvPath = s.drvPath AND m.outputName = s.outputName;`)
    sql
      .prepare(
        `INSERT INTO main.RealisationsRefs (referrer, realisationReference)
         SELECT a.dst, b.dst FROM src.RealisationsRefs r
         JOIN rmap a ON a.src = r.referrer JOIN rmap b ON b.src = r.realisationReference
         WHERE a.dst > ?`
      )
      .run(before)
  }
  return added
}
