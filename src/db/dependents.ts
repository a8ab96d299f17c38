// Deleting rows together with every row that depends on them, in the order the
// database's own foreign keys require: dependents first. The dependents are read
// from the database (PRAGMA foreign_key_list), never assumed from one Nix
// version's layout, so a Nix that adds a table referring to ValidPaths or
// Realisations is handled too (RealisationsRefs refers to Realisations `on
// delete restrict`: deleting a realisation before its references fails).
import type Database from 'better-sqlite3'
import { NixDbError } from './errors.js'

interface ForeignKey {
  /** The table holding the reference. */
  table: string
  from: string
  /** The referenced column; undefined means the parent's primary key. */
  to: string | undefined
}

/** Every foreign key in `main` that refers to `parent`. */
function dependentsOf(sql: Database.Database, parent: string): ForeignKey[] {
  const tables = sql
    .prepare(
      "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    .pluck()
    .all() as string[]
  const out: ForeignKey[] = []
  for (const table of tables) {
    const fks = sql
      .prepare('SELECT "table" AS parent, "from", "to" FROM pragma_foreign_key_list(?, ?)')
      .all(table, 'main') as { parent: string; from: string; to: string | null }[]
    for (const fk of fks) {
      if (fk.parent.toLowerCase() !== parent.toLowerCase()) continue
      out.push({ table, from: fk.from, to: fk.to ?? undefined })
    }
  }
  return out
}

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`

/**
 * Deletes the rows of `table` matching `where` (an SQL predicate over that
 * table), after deleting, recursively, every row of any table that refers to
 * them. The caller runs it inside a transaction with foreign keys on, so a
 * dependency this misses (a trigger, say) fails the whole transaction instead of
 * leaving half a deletion. Returns how many rows of `table` went.
 */
export function deleteWithDependents(
  sql: Database.Database,
  table: string,
  where: string,
  depth = 0
): number {
  if (depth > 8) throw new NixDbError(`foreign keys nest too deeply below ${table}`)
  for (const fk of dependentsOf(sql, table)) {
    if (fk.table === table) continue
    const key = fk.to === undefined ? 'rowid' : quote(fk.to)
    deleteWithDependents(
      sql,
      fk.table,
      `${quote(fk.from)} IN (SELECT ${key} FROM main.${quote(table)} WHERE ${where})`,
      depth + 1
    )
  }
  return sql.prepare(`DELETE FROM main.${quote(table)} WHERE ${where}`).run().changes
}
