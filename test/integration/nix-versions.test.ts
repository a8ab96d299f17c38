// One cache across Nix versions (Debian's 2.8 and trixie's 2.26, each run the
// way nix-portable runs it), with content-addressed outputs: jobs through the
// built CLI as an unprivileged user, judged by nix itself.
import { afterAll, describe, expect, it } from 'vitest'
import { chownSync, mkdirSync } from 'node:fs'
import { chmod, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { NixDb } from '../../src/db/index.js'
import { restoreSnapshot } from '../../src/snapshot/restore.js'
import {
  cli,
  contextFor,
  job,
  RecordingLogger,
  storeFingerprint,
  type JobOptions
} from '../rig/jobs.js'
import { requisites } from '../rig/store.js'
import {
  countBuilds,
  dbFile,
  makeWorld,
  NIX_VERSIONS,
  nixOk,
  nixPortable,
  NOBODY,
  removeWorld,
  storeDir,
  type NixVersion,
  type World
} from '../rig/world.js'

// caUser uses caHello while it builds: its realisation refers to caHello's.
const DEPS = 'hello caHello caUser'

const worlds: World[] = []
async function world(nix: NixVersion, unprivileged = true): Promise<World> {
  const w = await makeWorld({ nix, ca: true, unprivileged })
  worlds.push(w)
  return w
}
afterAll(async () => {
  for (const w of worlds) await removeWorld(w)
})

async function cacheDir(): Promise<string> {
  const holder = await world('2.8')
  const dir = join(holder.root, 'cache')
  mkdirSync(dir)
  chownSync(dir, NOBODY.uid, NOBODY.gid)
  return dir
}

/** `nix-store-cache run` through the CLI; fails the test when the job fails. */
async function run(w: World, cache: string, command = 'ca-hello'): Promise<string> {
  const o: JobOptions = { deps: DEPS, run: command, backend: 'local', cacheDir: cache }
  const r = await cli(w, 'run', o)
  if (r.code !== 0) throw new Error(`job failed (${r.code}):\n${r.stdout}\n${r.stderr}`)
  return `${r.stdout}\n${r.stderr}`
}

async function verified(w: World): Promise<void> {
  const v = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
  expect(v.code).toBe(0)
  expect(v.stderr).not.toMatch(/disappeared|modified|not valid|still has valid referrers/)
}

async function removeFolder(w: World, path: string): Promise<void> {
  const folder = join(storeDir(w), path.slice('/nix/store/'.length))
  await chmod(folder, 0o755)
  await rm(folder, { recursive: true })
}

describe.each(NIX_VERSIONS)('Nix %s with content-addressed outputs', nix => {
  let cache: string
  let warm: World

  it('saves a cold job; a warm job in a fresh location builds nothing', async () => {
    cache = await cacheDir()
    const cold = await world(nix)
    const first = await run(cold, cache)
    expect(countBuilds(first)).toBeGreaterThan(0)
    expect(first).toMatch(/Saved pack/)

    warm = await world(nix)
    const second = await run(warm, cache)
    expect(second).toContain('Hello, world!')
    expect(countBuilds(second)).toBe(0)
    expect(second).not.toMatch(/not merged|warning/)
    await verified(warm)
    // The location's own Nix made the database, with its own CA records.
    const db = NixDb.open(dbFile(warm), { readonly: true })
    try {
      expect(db.hasRows('Realisations')).toBe(true)
      expect(db.hasRows('RealisationsRefs')).toBe(true)
      expect(db.hasTable('SchemaMigrations')).toBe(nix !== '2.8')
    } finally {
      db.close()
    }
  })

  it("repairs after a realisation's output vanished, restores it, builds nothing", async () => {
    const caHello = (
      await nixOk(warm, ['nix-build', '<nixpkgs>', '-A', 'caHello', '--no-out-link'])
    ).trim()
    await removeFolder(warm, caHello)
    const out = await run(warm, cache)
    expect(out).toMatch(/had no folder or referred to one that had none/)
    expect(countBuilds(out)).toBe(0)
    await verified(warm)
  })

  it('repairs after a path that outputs refer to vanished, restores it, builds nothing', async () => {
    const hello = (
      await nixOk(warm, ['nix-build', '<nixpkgs>', '-A', 'hello', '--no-out-link'])
    ).trim()
    const greeting = (await requisites(warm, [hello])).find(p => p.endsWith('-greeting-1.0'))!
    await removeFolder(warm, greeting)
    const out = await run(warm, cache, 'hello && ca-hello')
    expect(out).toMatch(/had no folder or referred to one that had none/)
    expect(countBuilds(out)).toBe(0)
    await verified(warm)
  })

  it('goes on as a miss, touching nothing, when the repair cannot finish', async () => {
    const w = await world(nix, false)
    const o: JobOptions = { deps: DEPS, backend: 'local', cacheDir: cache }
    await job(w, o)
    const caHello = (
      await nixOk(w, ['nix-build', '<nixpkgs>', '-A', 'caHello', '--no-out-link'])
    ).trim()
    await removeFolder(w, caHello)
    // What a Nix we do not know might add: a trigger refusing the deletion.
    const db = NixDb.open(dbFile(w))
    db.sql.exec(`CREATE TRIGGER KeepPaths BEFORE DELETE ON ValidPaths
                 BEGIN SELECT RAISE(ABORT, 'kept by a newer Nix'); END`)
    db.close()
    const before = storeFingerprint(w)
    const log = new RecordingLogger()
    const r = await restoreSnapshot(await contextFor(w, o, log))
    expect(r.cacheHit).toBe(false)
    expect(r.pathsRestored).toBe(0)
    expect(log.warnings.join('\n')).toMatch(/kept by a newer Nix.*Going on without it/)
    expect(storeFingerprint(w)).toBe(before)
  })
})

describe('a cache made by one Nix, restored by another', () => {
  it.each([
    ['2.8', '2.26'],
    ['2.26', '2.8']
  ] as const)('from %s into %s: builds nothing, and nix verifies', async (from, to) => {
    const cache = await cacheDir()
    const cold = await world(from)
    expect(countBuilds(await run(cold, cache))).toBeGreaterThan(0)
    const warm = await world(to)
    const out = await run(warm, cache)
    expect(out).toContain('Hello, world!')
    expect(countBuilds(out)).toBe(0)
    expect(out).not.toMatch(/not merged|warning/)
    await verified(warm)
  })
})
