// NixDb: one Nix database (db.sqlite), opened only after it proved to be one.
import type Database from 'better-sqlite3'
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { NixDbError } from './errors.js'
import { connect, create } from './native.js'
import { isStorePath } from './paths.js'
import {
  CA_SCHEMA,
  checkTables,
  hasTable,
  EXTERNAL_REFS_SCHEMA,
  NIX_SCHEMA,
  SCHEMA_VERSION
} from './schema.js'

const SQLITE_MAGIC = 'SQLite format 3\0'

export interface OpenOptions {
  readonly?: boolean
}

export interface CreateOptions {
  /** Also create the ca-derivations tables. */
  ca?: boolean
  /** Also create the pack-only ExternalRefs table. */
  externalRefs?: boolean
}

/** Throws unless `file` starts with SQLite's header. Reads 16 bytes, writes nothing. */
export function assertSqliteFile(file: string): void {
  const buf = Buffer.alloc(16)
  const fd = openSync(file, 'r')
  let n: number
  try {
    n = readSync(fd, buf, 0, 16, 0)
  } finally {
    closeSync(fd)
  }
  if (n < 16 || buf.toString('latin1') !== SQLITE_MAGIC) {
    throw new NixDbError(`${file} is not an SQLite database`)
  }
}

/** The version in Nix's `schema` file beside the database, or undefined without one. */
export function readSchemaFile(dbFile: string): number | undefined {
  const file = join(dirname(dbFile), 'schema')
  if (!existsSync(file)) return undefined
  const text = readFileSync(file, 'utf8').trim()
  if (!/^\d+$/.test(text)) throw new NixDbError(`${file} is corrupt: "${text.slice(0, 20)}"`)
  return Number(text)
}

/** A path's row with what a signature covers. */
export interface PathRow {
  path: string
  hash: string
  narSize: number
  sigs: string | null
  /** Full store paths, sorted; a pack's references outside itself included. */
  references: string[]
}

export class NixDb {
  private constructor(
    readonly file: string,
    readonly sql: Database.Database
  ) {}

  /**
   * Opens an existing Nix database after checking, without writing anything, that it
   * is SQLite, that Nix's `schema` file (if any) says a version we know, and that the
   * tables and columns we rely on are there.
   */
  static open(file: string, opts: OpenOptions = {}): NixDb {
    if (!existsSync(file)) throw new NixDbError(`no Nix database at ${file}`)
    assertSqliteFile(file)
    const version = readSchemaFile(file)
    if (version !== undefined && version !== SCHEMA_VERSION) {
      throw new NixDbError(
        `${file} has Nix schema version ${version}; nix-store-cache supports version ${SCHEMA_VERSION}. ` +
          `Use a nix-portable whose Nix writes schema ${SCHEMA_VERSION}, or start from an empty location.`
      )
    }
    const sql = connect(file, { readonly: opts.readonly ?? false })
    try {
      checkTables(sql, 'main', file)
    } catch (e) {
      sql.close()
      throw wrapSqliteError(e, file)
    }
    tune(sql)
    return new NixDb(file, sql)
  }

  /**
   * Creates a pack's database: Nix's base schema, plus the ca-derivations tables
   * and ExternalRefs when asked. A location's own database is created by its own
   * Nix instead (nix-portable/init-db.ts), never by us.
   */
  static create(file: string, opts: CreateOptions = {}): NixDb {
    const sql = create(file)
    // A file being built: its journal in memory, so no -journal file ever sits
    // beside it (a pack holds exactly pack.json, db.sqlite and store/).
    sql.pragma('journal_mode = memory')
    sql.exec(NIX_SCHEMA)
    if (opts.ca) sql.exec(CA_SCHEMA)
    if (opts.externalRefs) sql.exec(EXTERNAL_REFS_SCHEMA)
    tune(sql)
    return new NixDb(file, sql)
  }

  /** Opens `file`, runs `f` on it (synchronously) and closes it, whatever happens. */
  static with<T>(file: string, opts: OpenOptions, f: (db: NixDb) => T): T {
    const db = NixDb.open(file, opts)
    try {
      return f(db)
    } finally {
      db.close()
    }
  }

  close(): void {
    this.sql.close()
  }

  /** The largest ValidPaths id: every path registered later has a larger one. */
  watermark(): number {
    const row = this.sql.prepare('SELECT coalesce(max(id), 0) AS w FROM ValidPaths').get() as {
      w: number
    }
    return row.w
  }

  /** Paths registered after `watermark`, in registration order. */
  pathsSince(watermark: number): string[] {
    return this.sql
      .prepare('SELECT path FROM ValidPaths WHERE id > ? ORDER BY id')
      .pluck()
      .all(watermark) as string[]
  }

  hasTable(table: string): boolean {
    return hasTable(this.sql, 'main', table)
  }

  /** Whether `table` exists here and holds at least one row. */
  hasRows(table: string): boolean {
    if (!this.hasTable(table)) return false
    return this.sql.prepare(`SELECT 1 FROM main."${table}" LIMIT 1`).get() !== undefined
  }

  /** The rows of `paths` (every row when undefined), with their references. */
  rows(paths?: readonly string[]): PathRow[] {
    const external = this.hasTable('ExternalRefs')
      ? 'UNION SELECT e.path FROM ExternalRefs e WHERE e.referrer = v.id'
      : ''
    const rows = this.sql
      .prepare(
        `SELECT v.path, v.hash, coalesce(v.narSize, 0) AS narSize, v.sigs,
           (SELECT json_group_array(p) FROM (
              SELECT w.path AS p FROM Refs r JOIN ValidPaths w ON w.id = r.reference
              WHERE r.referrer = v.id ${external} ORDER BY 1)) AS refs
         FROM ValidPaths v
         WHERE @paths IS NULL OR v.path IN (SELECT value FROM json_each(@paths))
         ORDER BY v.path`
      )
      .all({ paths: paths ? JSON.stringify(paths) : null }) as (Omit<PathRow, 'references'> & {
      refs: string
    })[]
    return rows.map(({ refs, ...r }) => ({ ...r, references: JSON.parse(refs) as string[] }))
  }

  /** Sets ValidPaths.sigs of each path, in one transaction. */
  setSigs(sigs: ReadonlyMap<string, string>): void {
    const stmt = this.sql.prepare('UPDATE ValidPaths SET sigs = ? WHERE path = ?')
    this.sql.transaction(() => {
      for (const [path, value] of sigs) stmt.run(value, path)
    })()
  }

  count(): number {
    return this.sql.prepare('SELECT count(*) FROM ValidPaths').pluck().get() as number
  }

  /** Which of `paths` are valid here. */
  validAmong(paths: readonly string[]): string[] {
    return this.sql
      .prepare(
        'SELECT path FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?)) ORDER BY path'
      )
      .pluck()
      .all(JSON.stringify(paths)) as string[]
  }

  /** NAR bytes of each of `paths` that is valid here. */
  narSizes(paths: readonly string[]): Map<string, number> {
    const rows = this.sql
      .prepare(
        'SELECT path, coalesce(narSize, 0) AS n FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))'
      )
      .all(JSON.stringify(paths)) as { path: string; n: number }[]
    return new Map(rows.map(r => [r.path, r.n]))
  }

  /** `paths` and every path that refers to one of them, directly or not, sorted. */
  referrersClosure(paths: readonly string[]): string[] {
    return this.sql
      .prepare(
        `${REFERRERS_CTE} SELECT v.path FROM d JOIN ValidPaths v ON v.id = d.id ORDER BY v.path`
      )
      .pluck()
      .all(JSON.stringify(paths)) as string[]
  }

  /** The closure of `paths` under references (the paths themselves included), sorted. */
  closure(paths: readonly string[]): string[] {
    return this.sql
      .prepare(
        `WITH RECURSIVE c(id) AS (
           SELECT id FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))
           UNION
           SELECT r.reference FROM Refs r JOIN c ON r.referrer = c.id
         )
         SELECT v.path FROM c JOIN ValidPaths v ON v.id = c.id ORDER BY v.path`
      )
      .pluck()
      .all(JSON.stringify(paths)) as string[]
  }
}

/** `d(id)`: the ids of the JSON array parameter's paths and of all their referrers. */
export const REFERRERS_CTE = `WITH RECURSIVE d(id) AS (
  SELECT id FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))
  UNION
  SELECT r.referrer FROM Refs r JOIN d ON r.reference = d.id
)`

/** Settings for large set operations; none of them changes the file's format. */
function tune(sql: Database.Database): void {
  sql.pragma('foreign_keys = ON')
  // What Nix itself sets (fsync-metadata = true): a commit is durable, with fewer syncs than FULL.
  sql.pragma('synchronous = NORMAL')
  // The default 2 MB page cache makes a large merge spend seconds in system calls.
  sql.pragma('cache_size = -65536')
  sql.pragma('temp_store = MEMORY')
  // Called by SQLite row by row inside queries; six times faster than GLOB classes.
  sql.function('nix_bad_path', { deterministic: true }, (p: unknown) => (isStorePath(p) ? 0 : 1))
}

/**
 * Attaches another database as `src`. It is only ever read: every statement that
 * writes names `main` (better-sqlite3 is built without URI filenames, so `mode=ro`
 * is not available here).
 */
export function attachSource(sql: Database.Database, file: string): void {
  sql.prepare('ATTACH DATABASE ? AS src').run(file)
}

export function wrapSqliteError(e: unknown, file: string): Error {
  if (e instanceof NixDbError) return e
  const code = (e as { code?: unknown }).code
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new NixDbError(`${file} is not a usable SQLite database (${String(code)})`)
  }
  return e instanceof Error ? e : new Error(String(e))
}
