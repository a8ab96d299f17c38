// npm run bench:merge — merges two databases with Nix's real schema, 200,000
// paths and 1,000,000 references each, half the paths shared. The merge runs in a
// child process so its peak RSS is its own. Baseline, measured in the same run:
// SQLite copying the source's rows into an empty database of the same schema
// (INSERT … SELECT, no dedupe, no remapping): the floor for moving those rows.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { merge, NixDb } from '../src/db/index.js'

const PATHS = 200_000
const SHARED = PATHS / 2
const REFS_PER_PATH = 5

interface Figures {
  seconds: number
  rssMB: number
  paths: number
  refs: number
}

/** Paths numbered `from`..`from + count - 1`, plus the shared ones 0..SHARED-1. */
function generate(file: string, from: number): void {
  const db = NixDb.create(file)
  const sql = db.sql
  sql.transaction(() => {
    sql.exec(`CREATE TEMP TABLE nums (n INTEGER PRIMARY KEY)`)
    sql
      .prepare(
        `WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < ? - 1)
         INSERT INTO nums SELECT n FROM s WHERE n < ? UNION ALL SELECT n + ? FROM s WHERE n < ?`
      )
      .run(PATHS, SHARED, from, PATHS - SHARED)
    sql.exec(`INSERT INTO ValidPaths (path, hash, registrationTime, narSize, deriver)
      SELECT printf('/nix/store/%032d-pkg-%d', n, n), printf('sha256:%064d', n), 1700000000 + n, n * 10,
             printf('/nix/store/%032d-pkg-%d.drv', n, n)
      FROM nums ORDER BY n`)
    // Each path refers to REFS_PER_PATH shared paths chosen by its number, so a
    // shared path has the same references in both databases.
    sql.exec(`WITH k(k) AS (VALUES (1), (2), (3), (4), (5))
      INSERT OR IGNORE INTO Refs (referrer, reference)
      SELECT a.id, b.id FROM nums JOIN k
      JOIN ValidPaths a ON a.path = printf('/nix/store/%032d-pkg-%d', n, n)
      JOIN ValidPaths b ON b.path = printf('/nix/store/%032d-pkg-%d', (n * k * 2654435761) % ${SHARED},
                                                                        (n * k * 2654435761) % ${SHARED})
      ORDER BY 1, 2`)
    sql.exec(`INSERT INTO DerivationOutputs (drv, id, path)
      SELECT id, 'out', path FROM ValidPaths WHERE id % 10 = 0`)
  })()
  void REFS_PER_PATH
  db.close()
}

function child(mode: string, target: string, source: string): void {
  const start = process.hrtime.bigint()
  const db = NixDb.open(target)
  if (mode === 'merge') {
    merge(db, source)
  } else {
    // The same settings as the merge (foreign keys off: ids are copied as they are).
    db.sql.pragma('foreign_keys = OFF')
    db.sql.prepare('ATTACH DATABASE ? AS src').run(source)
    db.sql.transaction(() => {
      db.sql.exec(`INSERT INTO main.ValidPaths SELECT * FROM src.ValidPaths;
        INSERT INTO main.Refs SELECT * FROM src.Refs;
        INSERT INTO main.DerivationOutputs SELECT * FROM src.DerivationOutputs;`)
    })()
    db.sql.exec('DETACH DATABASE src')
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const paths = db.count()
  const refs = db.sql.prepare('SELECT count(*) FROM Refs').pluck().get() as number
  db.close()
  const rssMB = process.resourceUsage().maxRSS / 1024
  process.stdout.write(JSON.stringify({ seconds, rssMB, paths, refs } satisfies Figures))
}

function measure(mode: string, target: string, source: string): Figures {
  const out = execFileSync(process.execPath, [process.argv[1]!, '--child', mode, target, source])
  return JSON.parse(out.toString()) as Figures
}

function main(): void {
  if (process.argv[2] === '--child')
    return child(process.argv[3]!, process.argv[4]!, process.argv[5]!)
  const dir = mkdtempSync(join(tmpdir(), 'nsc-bench-merge-'))
  try {
    const a = join(dir, 'a.sqlite')
    const b = join(dir, 'b.sqlite')
    const empty = join(dir, 'empty.sqlite')
    generate(a, SHARED)
    generate(b, PATHS)
    NixDb.create(empty).close()
    const src = NixDb.open(b, { readonly: true })
    const srcRefs = src.sql.prepare('SELECT count(*) FROM Refs').pluck().get() as number
    src.close()

    const base = measure('copy', empty, b)
    const m = measure('merge', a, b)
    const expectedPaths = PATHS + (PATHS - SHARED)
    if (m.paths !== expectedPaths)
      throw new Error(`merge gave ${m.paths} paths, expected ${expectedPaths}`)
    console.log(
      `source: ${PATHS} paths, ${srcRefs} refs; target after merge: ${m.paths} paths, ${m.refs} refs`
    )
    console.log(
      `baseline (plain INSERT…SELECT copy into an empty db): ${base.seconds.toFixed(2)} s, peak RSS ${base.rssMB.toFixed(0)} MB`
    )
    console.log(`ratio: merge ${(m.seconds / base.seconds).toFixed(2)}x the baseline's time`)
    console.log(
      `merge: ${PATHS} paths, ${srcRefs} refs in ${m.seconds.toFixed(2)} s, peak RSS ${m.rssMB.toFixed(0)} MB`
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main()
