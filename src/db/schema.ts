// Nix's database schema (version 10, Nix 2.0 to today) and checks that a file
// really is such a database. Every SQLite file we open is untrusted until checked.
import type Database from 'better-sqlite3'
import { NixDbError } from './errors.js'

export const SCHEMA_VERSION = 10

/** Nix's own schema.sql for version 10, as Nix creates it. */
export const NIX_SCHEMA = `
create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer,
    sigs             text,
    ca               text
);
create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);
create index if not exists IndexReferrer on Refs(referrer);
create index if not exists IndexReference on Refs(reference);
create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;
create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null,
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);
create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
`

/** Nix's ca-specific-schema.sql (ca-derivations), for packs whose source has it. */
export const CA_SCHEMA = `
create table if not exists Realisations (
    id integer primary key autoincrement not null,
    drvPath text not null,
    outputName text not null,
    outputPath integer not null,
    signatures text,
    foreign key (outputPath) references ValidPaths(id) on delete cascade
);
create index if not exists IndexRealisations on Realisations(drvPath, outputName);
create trigger if not exists DeleteSelfRefsViaRealisations before delete on ValidPaths
  begin
    delete from RealisationsRefs where realisationReference = (
      select id from Realisations where outputPath = old.id
    );
  end;
create table if not exists RealisationsRefs (
    referrer integer not null,
    realisationReference integer,
    foreign key (referrer) references Realisations(id) on delete cascade,
    foreign key (realisationReference) references Realisations(id) on delete restrict
);
create index if not exists IndexRealisationsRefs on RealisationsRefs(referrer);
create index if not exists IndexRealisationsRefsOnOutputPath on Realisations(outputPath);
`

/** A pack's references to paths outside the pack, kept by path (not part of Nix's schema). */
export const EXTERNAL_REFS_SCHEMA = `
create table if not exists ExternalRefs (
    referrer integer not null,
    path     text not null,
    primary key (referrer, path),
    foreign key (referrer) references ValidPaths(id) on delete cascade
);
`

/** The columns our queries rely on; anything else is carried along if both sides have it. */
const REQUIRED: Record<string, readonly string[]> = {
  ValidPaths: ['id', 'path', 'hash', 'registrationTime'],
  Refs: ['referrer', 'reference'],
  DerivationOutputs: ['drv', 'id', 'path']
}

export interface Column {
  name: string
  notNull: boolean
  hasDefault: boolean
}

export function columns(db: Database.Database, schema: string, table: string): Column[] {
  const rows = db
    .prepare(`SELECT name, "notnull" AS nn, dflt_value AS d FROM pragma_table_info(?, ?)`)
    .all(table, schema) as {
    name: string
    nn: number
    d: unknown
  }[]
  return rows.map(r => ({ name: r.name, notNull: r.nn === 1, hasDefault: r.d !== null }))
}

export function hasTable(db: Database.Database, schema: string, table: string): boolean {
  const row = db
    .prepare(`SELECT 1 FROM "${schema}".sqlite_master WHERE type = 'table' AND name = ?`)
    .get(table)
  return row !== undefined
}

/** Refuses a database that lacks Nix's tables or columns; `what` names it in the message. */
export function checkTables(db: Database.Database, schema: string, what: string): void {
  for (const [table, needed] of Object.entries(REQUIRED)) {
    if (!hasTable(db, schema, table)) {
      throw new NixDbError(`${what} is not a Nix database: it has no table ${table}`)
    }
    const have = new Set(columns(db, schema, table).map(c => c.name))
    const missing = needed.filter(c => !have.has(c))
    if (missing.length > 0) {
      throw new NixDbError(
        `${what} has an unknown Nix schema: table ${table} lacks ${missing.join(', ')}`
      )
    }
  }
}

export interface ColumnPlan {
  into: string
  select: string
}

/**
 * The columns both sides have, read with PRAGMA table_info, so a Nix that adds a
 * column does not break a merge. `overrides` maps a column to the expression to
 * select for it, or null to leave it out. A NOT NULL column without a default that
 * only the target has is refused: we could not fill it.
 */
export function columnPlan(
  sql: Database.Database,
  table: string,
  overrides: Record<string, string | null>
): ColumnPlan {
  const src = new Set(columns(sql, 'src', table).map(c => c.name))
  const into: string[] = []
  const select: string[] = []
  for (const col of columns(sql, 'main', table)) {
    const override = overrides[col.name]
    if (override === null) continue
    if (override === undefined && !src.has(col.name)) {
      if (col.notNull && !col.hasDefault) {
        throw new NixDbError(
          `cannot merge ${table}: the source lacks the required column ${col.name}`
        )
      }
      continue
    }
    into.push(`"${col.name}"`)
    select.push(override ?? `s."${col.name}"`)
  }
  return { into: into.join(', '), select: select.join(', ') }
}
