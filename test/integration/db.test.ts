// The database engine against databases that real nix wrote, judged by nix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { chmod, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { checkStore, extract, merge, NixDb, NixDbError, repair } from '../../src/db/index.js'
import { initStoreDb } from '../../src/nix-portable/init-db.js'
import { build, copyStorePaths, dumpDb, requisites } from '../rig/store.js'
import {
  dbFile,
  makeWorld,
  NIX_VERSIONS,
  nixOk,
  nixPortable,
  removeWorld,
  storeDir,
  type World,
  type WorldOptions
} from '../rig/world.js'

const worlds: World[] = []
async function world(opts: WorldOptions = {}): Promise<World> {
  const w = await makeWorld(opts)
  worlds.push(w)
  return w
}
afterAll(async () => {
  for (const w of worlds) await removeWorld(w)
})

function tables(w: World): string[] {
  return withDb(
    w,
    db =>
      db.sql
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .pluck()
        .all() as string[]
  )
}

function withDb<T>(w: World, f: (db: NixDb) => T): T {
  const db = NixDb.open(dbFile(w))
  try {
    return f(db)
  } finally {
    db.close()
  }
}

describe('merging two stores built independently', () => {
  let a: World
  let b: World
  let aPaths: string[]
  let bPaths: string[]

  beforeAll(async () => {
    a = await world()
    // Debian's nix uses WAL; nix-portable a rollback journal: merge across both.
    b = await world({ wal: true })
    aPaths = await build(a, ['hello', 'multi.out', 'multi.dev', 'bigbin'])
    bPaths = await build(b, ['hello', 'cowsay', 'figlet'])
  })

  it('gives a store nix verifies, with every closure equal to the union', async () => {
    const aDumpBefore = await dumpDb(a)
    const expected = new Map<string, string[]>()
    for (const p of aPaths) expected.set(p, await requisites(a, [p]))
    for (const p of bPaths) expected.set(p, await requisites(b, [p]))

    const result = withDb(a, db => merge(db, dbFile(b)))
    expect(result.pathsAdded).toBeGreaterThan(0)
    // Move every folder B registered (outputs and .drv files) across.
    await copyStorePaths(
      b,
      a,
      withDb(b, db => db.pathsSince(0))
    )

    const verifyOut = await nixPortable(a, ['nix-store', '--verify', '--check-contents'])
    expect(verifyOut.code).toBe(0)
    expect(verifyOut.stderr).not.toMatch(/disappeared|modified|not valid/)
    for (const [p, reqs] of expected) expect(await requisites(a, [p])).toEqual(reqs)
    // Every path A had keeps its row exactly.
    const after = new Set(await dumpDb(a))
    for (const block of aDumpBefore) expect(after.has(block)).toBe(true)
  })

  it('changes nothing when the same database is merged again', async () => {
    const before = await dumpDb(a)
    const result = withDb(a, db => merge(db, dbFile(b)))
    expect(result).toMatchObject({ pathsAdded: 0, refsAdded: 0, outputsAdded: 0 })
    expect(await dumpDb(a)).toEqual(before)
  })
})

describe('schemas that differ', () => {
  it('merges when either side has a column or a table the other lacks', async () => {
    const a = await world()
    const b = await world()
    await build(a, ['hello'])
    const [cowsay] = await build(b, ['cowsay'])
    // A newer Nix on the source side: an extra column and an extra table.
    const src = NixDb.open(dbFile(b))
    src.sql.exec(`ALTER TABLE ValidPaths ADD COLUMN futureField TEXT DEFAULT 'x';
      CREATE TABLE FutureTable (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO FutureTable VALUES (1, 'n');`)
    src.close()
    // And one the target has that the source lacks (nullable, as Nix adds them).
    const dst = NixDb.open(dbFile(a))
    dst.sql.exec('ALTER TABLE ValidPaths ADD COLUMN localOnly INTEGER')
    const result = merge(dst, dbFile(b))
    expect(result.pathsAdded).toBeGreaterThan(0)
    const cols = dst.sql.prepare("SELECT name FROM pragma_table_info('ValidPaths')").pluck().all()
    expect(cols).not.toContain('futureField')
    expect(
      dst.sql.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'FutureTable'").pluck().get()
    ).toBe(0)
    dst.close()
    await copyStorePaths(
      b,
      a,
      withDb(b, db => db.pathsSince(0))
    )
    expect(await requisites(a, [cowsay!])).toEqual(await requisites(b, [cowsay!]))
    expect((await nixPortable(a, ['nix-store', '--verify', '--check-contents'])).code).toBe(0)
  })
})

describe('extract', () => {
  it('then merge into an empty database gives the same rows as the source', async () => {
    const src = await world()
    const [hello, cowsay] = await build(src, ['hello', 'cowsay'])
    const closure = withDb(src, db => db.closure([cowsay!]))
    expect(closure).toEqual(await requisites(src, [cowsay!]))

    const pack = join(src.root, 'pack.sqlite')
    const result = extract(dbFile(src), closure, pack)
    expect(result.paths).toBe(closure.length)
    expect(result.externalRefs).toBe(0)

    const dst = await world()
    await nixOk(dst, ['nix-store', '--init'])
    const empty = NixDb.open(dbFile(dst))
    // Deriver rows (.drv) are not in the closure; merge keeps rows as they are.
    merge(empty, pack)
    empty.close()
    expect(await dumpDb(dst, closure)).toEqual(await dumpDb(src, closure))
    expect(hello).toBeDefined()
  })

  it('keeps references to paths outside the set by path, and merge needs them valid', async () => {
    const src = await world()
    const [cowsay] = await build(src, ['cowsay'])
    const pack = join(src.root, 'partial.sqlite')
    const result = extract(dbFile(src), [cowsay!], pack)
    expect(result.externalRefs).toBe(1) // cowsay -> hello

    const dst = await world()
    await nixOk(dst, ['nix-store', '--init'])
    const db = NixDb.open(dbFile(dst))
    const bytes = readFileSync(dbFile(dst))
    expect(() => merge(db, pack)).toThrow(/neither in it nor valid here.*-hello/)
    db.close()
    expect(readFileSync(dbFile(dst)).equals(bytes)).toBe(true)
  })
})

describe('safety of the target', () => {
  it('a merge that fails half way leaves the target byte-identical', async () => {
    const a = await world()
    const b = await world()
    await build(a, ['hello'])
    await build(b, ['cowsay', 'multi.dev'])
    for (const step of ['paths', 'refs', 'done']) {
      const bytes = readFileSync(dbFile(a))
      const db = NixDb.open(dbFile(a))
      expect(() =>
        merge(db, dbFile(b), s => {
          if (s === step) throw new Error(`injected at ${s}`)
        })
      ).toThrow(`injected at ${step}`)
      db.close()
      expect(readFileSync(dbFile(a)).equals(bytes)).toBe(true)
    }
  })

  it('refuses a file that is not SQLite, touching nothing', async () => {
    const a = await world()
    await build(a, ['hello'])
    const junk = join(a.root, 'junk.sqlite')
    writeFileSync(junk, 'this is not a database, just some text that is long enough')
    const bytes = readFileSync(dbFile(a))
    const db = NixDb.open(dbFile(a))
    expect(() => merge(db, junk)).toThrow(NixDbError)
    expect(() => merge(db, junk)).toThrow(/junk\.sqlite is not an SQLite database/)
    db.close()
    expect(() => NixDb.open(junk)).toThrow(/not an SQLite database/)
    expect(readFileSync(dbFile(a)).equals(bytes)).toBe(true)
    expect(readFileSync(junk, 'utf8')).toMatch(/^this is not/)
  })

  it('refuses a database with another schema version, touching nothing', async () => {
    const a = await world()
    await build(a, ['hello'])
    const schema = join(dbFile(a), '..', 'schema')
    writeFileSync(schema, '11')
    const bytes = readFileSync(dbFile(a))
    expect(() => NixDb.open(dbFile(a))).toThrow(
      /schema version 11; nix-store-cache supports version 10/
    )
    expect(readFileSync(dbFile(a)).equals(bytes)).toBe(true)
  })

  it('refuses an SQLite file without Nix tables', async () => {
    const a = await world()
    const other = join(a.root, 'other.sqlite')
    NixDb.create(other).close()
    const { connect } = await import('../../src/db/native.js')
    const c = connect(other)
    c.exec('DROP TABLE Refs')
    c.close()
    expect(() => NixDb.open(other)).toThrow(/not a Nix database: it has no table Refs/)
  })

  it.each([
    ['outside /nix/store', '/tmp/evil'],
    ['with a malformed hash', '/nix/store/EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE-x'],
    ['with a slash in the name', '/nix/store/00000000000000000000000000000000-a/../../etc'],
    ['with a name starting with a dot', '/nix/store/00000000000000000000000000000000-.hidden']
  ])('refuses rows with paths %s, touching nothing', async (_what, path) => {
    const a = await world()
    await build(a, ['hello'])
    const bad = join(a.root, 'bad.sqlite')
    const db = NixDb.create(bad)
    db.sql
      .prepare(`INSERT INTO ValidPaths (path, hash, registrationTime) VALUES (?, 'sha256:00', 1)`)
      .run(path)
    db.close()
    const bytes = readFileSync(dbFile(a))
    const target = NixDb.open(dbFile(a))
    expect(() => merge(target, bad)).toThrow(/malformed store paths/)
    target.close()
    expect(readFileSync(dbFile(a)).equals(bytes)).toBe(true)
  })

  it('refuses references to rows the source lacks, touching nothing', async () => {
    const a = await world()
    await build(a, ['hello'])
    const bad = join(a.root, 'dangling.sqlite')
    const db = NixDb.create(bad)
    db.sql.pragma('foreign_keys = OFF')
    db.sql
      .prepare(`INSERT INTO ValidPaths (path, hash, registrationTime) VALUES (?, 'sha256:00', 1)`)
      .run('/nix/store/00000000000000000000000000000000-lonely')
    db.sql.exec('INSERT INTO Refs (referrer, reference) VALUES (1, 999)')
    db.close()
    const bytes = readFileSync(dbFile(a))
    const target = NixDb.open(dbFile(a))
    expect(() => merge(target, bad)).toThrow(/references to missing rows; nothing was merged/)
    target.close()
    expect(readFileSync(dbFile(a)).equals(bytes)).toBe(true)
  })
})

describe('check and repair against the store folder', () => {
  it('drops a missing path with every referrer, and nix then verifies the store', async () => {
    const a = await world()
    const [hello, cowsay, figlet] = await build(a, ['hello', 'cowsay', 'figlet'])
    const greeting = (await requisites(a, [hello!])).find(p => p.endsWith('-greeting-1.0'))!
    const folder = join(storeDir(a), greeting.slice('/nix/store/'.length))
    await chmod(folder, 0o755)
    await rm(folder, { recursive: true })

    const broken = await nixPortable(a, ['nix-store', '--verify'])
    expect(broken.stderr).toMatch(/disappeared/)

    const dropped = withDb(a, db => {
      expect(checkStore(db, storeDir(a)).missing).toEqual([greeting])
      return repair(db, storeDir(a))
    })
    expect(dropped).toEqual([cowsay!, greeting, hello!].sort())
    const after = await nixPortable(a, ['nix-store', '--verify', '--check-contents'])
    expect(after.code).toBe(0)
    expect(after.stderr).not.toMatch(/disappeared|still has valid referrers/)
    // Untouched paths stay valid; the dropped folders are now unregistered.
    expect(await requisites(a, [figlet!])).toEqual([figlet])
    const check = withDb(a, db => checkStore(db, storeDir(a)))
    expect(check.missing).toEqual([])
    expect(check.unregistered).toEqual(expect.arrayContaining([hello, cowsay]))
    // Nix builds what was dropped again.
    const rebuilt = await build(a, ['cowsay'])
    expect(rebuilt).toEqual([cowsay])
  })
})

describe.each(NIX_VERSIONS)('repair with content-addressed outputs, on Nix %s', nix => {
  async function caWorld(): Promise<{ w: World; paths: Record<string, string> }> {
    const w = await world({ nix, ca: true })
    const [hello, caHello, caUser] = await build(w, ['hello', 'caHello', 'caUser'])
    return { w, paths: { hello: hello!, caHello: caHello!, caUser: caUser! } }
  }
  const outputsOf = (paths: string[]): string[] => paths.filter(p => !p.endsWith('.drv'))
  const realisationCount = (w: World): number =>
    withDb(w, db => db.sql.prepare('SELECT count(*) FROM Realisations').pluck().get() as number)
  const removeFolder = async (w: World, path: string): Promise<void> => {
    const folder = join(storeDir(w), path.slice('/nix/store/'.length))
    await chmod(folder, 0o755)
    await rm(folder, { recursive: true })
  }

  it("drops a realisation's vanished output before the realisations that refer to it", async () => {
    const { w, paths } = await caWorld()
    // caUser's realisation refers to caHello's (RealisationsRefs, on delete restrict).
    const refs = withDb(w, db =>
      db.sql.prepare('SELECT count(*) FROM RealisationsRefs').pluck().get()
    )
    expect(refs).toBeGreaterThan(0)
    const before = realisationCount(w)
    await removeFolder(w, paths.caHello!)

    const dropped = withDb(w, db => repair(db, storeDir(w)))
    // With it go the resolved derivations Nix wrote that name it (`….drv`).
    expect(outputsOf(dropped)).toEqual([paths.caHello])
    expect(dropped).not.toContain(paths.caUser)
    expect(realisationCount(w)).toBeLessThan(before)
    const after = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
    expect(after.code).toBe(0)
    expect(after.stderr).not.toMatch(/disappeared|still has valid referrers/)
    // caUser keeps its realisation: nix finds it without building; caHello is built again.
    const again = await nixPortable(w, [
      'nix-build',
      '<nixpkgs>',
      '--no-out-link',
      '-A',
      'caUser',
      '-A',
      'caHello'
    ])
    expect(again.code).toBe(0)
    expect(again.stdout.trim().split('\n')).toEqual([paths.caUser, paths.caHello])
    expect(again.stderr).not.toMatch(/building '.*ca-user/)
  })

  it("drops an input-addressed path that realisations' outputs refer to, with them", async () => {
    const { w, paths } = await caWorld()
    const greeting = (await requisites(w, [paths.caHello!])).find(p => p.endsWith('-greeting-1.0'))!
    await removeFolder(w, greeting)
    const dropped = withDb(w, db => repair(db, storeDir(w)))
    expect(outputsOf(dropped)).toEqual([greeting, paths.hello, paths.caHello].sort())
    const after = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
    expect(after.code).toBe(0)
    expect(after.stderr).not.toMatch(/disappeared|still has valid referrers/)
    expect(await build(w, ['caHello', 'hello'])).toEqual([paths.caHello, paths.hello])
  })

  it('changes nothing at all when the repair cannot finish', async () => {
    const { w, paths } = await caWorld()
    await removeFolder(w, paths.caHello!)
    // What a Nix we do not know might add: a trigger refusing the deletion.
    withDb(w, db =>
      db.sql.exec(`CREATE TRIGGER KeepPaths BEFORE DELETE ON ValidPaths
                   BEGIN SELECT RAISE(ABORT, 'kept by a newer Nix'); END`)
    )
    const bytes = readFileSync(dbFile(w))
    expect(() => withDb(w, db => repair(db, storeDir(w)))).toThrow(/kept by a newer Nix/)
    expect(readFileSync(dbFile(w)).equals(bytes)).toBe(true)
  })
})

describe('content-addressed derivations (Realisations)', () => {
  const CA = { RIG_EXTRA_NIX_CONFIG: 'experimental-features = ca-derivations' }

  it.each(NIX_VERSIONS)("are where Nix %s's initDb puts them, with its own records", async nix => {
    const w = await world({ nix })
    const np = { nixPortable: w.launcher, location: w.location, runtime: 'auto' }
    await initStoreDb(np, false)
    expect(withDb(w, db => db.hasRows('ValidPaths'))).toBe(false)
    expect(tables(w)).not.toContain('Realisations')
    // Asked again with ca-derivations, the same Nix migrates its own database.
    await initStoreDb(np, true)
    expect(tables(w)).toEqual(expect.arrayContaining(['Realisations', 'RealisationsRefs']))
    if (nix === '2.8') expect(existsSync(join(dbFile(w), '..', 'ca-schema'))).toBe(true)
    else expect(withDb(w, db => db.hasRows('SchemaMigrations'))).toBe(true)
    const r = await nixPortable(w, ['nix-shell', '-p', 'hello', '--run', 'hello'])
    expect(r.stdout).toBe('Hello, world!\n')
  })

  it('merges Realisations with their references remapped', async () => {
    const a = await world()
    const b = await world()
    await build(a, ['hello'], CA)
    const [caHello] = await build(b, ['caHello'], CA)
    const realisations = (w: World): string[] =>
      withDb(
        w,
        db =>
          db.sql
            .prepare(
              `SELECT r.drvPath || ' ' || r.outputName || ' ' || v.path FROM Realisations r
             JOIN ValidPaths v ON v.id = r.outputPath ORDER BY 1`
            )
            .pluck()
            .all() as string[]
      )
    const expected = [...new Set([...realisations(a), ...realisations(b)])].sort()
    expect(realisations(b).some(r => r.endsWith(caHello!))).toBe(true)
    const result = withDb(a, db => merge(db, dbFile(b)))
    expect(result.realisationsAdded).toBeGreaterThan(0)
    expect(realisations(a)).toEqual(expected)
    await copyStorePaths(
      b,
      a,
      withDb(b, db => db.pathsSince(0))
    )
    const again = await nixPortable(
      a,
      ['nix-build', '<nixpkgs>', '-A', 'caHello', '--no-out-link'],
      CA
    )
    expect(again.stdout.trim()).toBe(caHello)
    expect(again.stderr).not.toMatch(/building '.*ca-hello/)

    // A pack of the closure carries its Realisations too.
    const c = await world()
    await build(c, ['hello'], CA)
    const closure = withDb(b, db => db.closure([caHello!]))
    const pack = join(b.root, 'ca-pack.sqlite')
    extract(dbFile(b), closure, pack)
    const added = withDb(c, db => merge(db, pack))
    const inClosure = (w: World): string[] =>
      realisations(w).filter(r => closure.some(p => r.endsWith(p)))
    expect(inClosure(b).length).toBeGreaterThan(0)
    // c already has the realisation of greeting (built for hello); the rest are new.
    expect(added.realisationsAdded).toBe(inClosure(b).length - 1)
    expect(inClosure(c)).toEqual(inClosure(b))
  })
})
