// Smoke tests proving each part of the rig is real: nix through the
// nix-portable stand-in, and the cache service over Azurite used by the real
// @actions/cache client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as cache from '@actions/cache'
import { startCacheService, type CacheService } from '../rig/cache-service.js'
import {
  countBuilds,
  dbFile,
  makeWorld,
  nixOk,
  nixPortable,
  removeWorld,
  type World
} from '../rig/world.js'

function rowCounts(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true })
  try {
    const count = (t: string): number =>
      (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n
    return {
      ValidPaths: count('ValidPaths'),
      Refs: count('Refs'),
      DerivationOutputs: count('DerivationOutputs')
    }
  } finally {
    db.close()
  }
}

describe.each([
  { who: 'root', unprivileged: false },
  { who: 'an unprivileged user', unprivileged: true }
])('nix through the nix-portable stand-in, as $who', ({ unprivileged }) => {
  let world: World
  beforeAll(async () => {
    world = await makeWorld({ unprivileged })
  })
  afterAll(async () => {
    await removeWorld(world)
  })

  it('runs nix-shell -p and registers real rows', async () => {
    const r = await nixPortable(world, ['nix-shell', '-p', 'hello', 'multi', '--run', 'hello'])
    expect(r.stderr).not.toMatch(/error:/)
    expect(r.stdout).toBe('Hello, world!\n')
    expect(countBuilds(r.stderr)).toBeGreaterThan(0)
    const counts = rowCounts(dbFile(world))
    expect(counts.ValidPaths).toBeGreaterThan(5)
    expect(counts.Refs).toBeGreaterThan(0)
    expect(counts.DerivationOutputs).toBeGreaterThan(0)
  })

  it('leaves a store that nix itself verifies', async () => {
    const r = await nixPortable(world, ['nix-store', '--verify', '--check-contents'])
    expect(r.code).toBe(0)
    expect(r.stderr).not.toMatch(/error|disappeared|modified/)
  })

  it('records run-time references and both outputs of a two-output package', async () => {
    const hello = (
      await nixOk(world, ['nix-build', '<nixpkgs>', '-A', 'hello', '--no-out-link'])
    ).trim()
    const refs = await nixOk(world, ['nix-store', '-q', '--references', hello])
    expect(refs).toMatch(/-greeting-1\.0\n/)
    const dev = (
      await nixOk(world, ['nix-build', '<nixpkgs>', '-A', 'multi.dev', '--no-out-link'])
    ).trim()
    const devRefs = await nixOk(world, ['nix-store', '-q', '--references', dev])
    expect(devRefs).toMatch(/-multi-2\.0\n/)
    const db = new Database(dbFile(world), { readonly: true })
    const ids = db
      .prepare(`SELECT id FROM DerivationOutputs WHERE path LIKE '%-multi-2.0%' ORDER BY id`)
      .all()
    db.close()
    expect(ids).toEqual([{ id: 'dev' }, { id: 'out' }])
  })

  it('builds nothing the second time', async () => {
    const r = await nixPortable(world, ['nix-shell', '-p', 'hello', 'multi', '--run', 'hello'])
    expect(r.code).toBe(0)
    expect(countBuilds(r.stderr)).toBe(0)
  })
})

describe('nix-portable stand-in with the proot runtime', () => {
  it('runs nix-shell -p', async () => {
    const world = await makeWorld()
    try {
      const r = await nixPortable(world, ['nix-shell', '-p', 'cowsay', '--run', 'cowsay moo'], {
        NP_RUNTIME: 'proot'
      })
      expect(r.stdout).toBe(' < moo Hello, world! >\n')
    } finally {
      await removeWorld(world)
    }
  })
})

async function treeHash(dir: string): Promise<string> {
  const h = createHash('sha256')
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name)
    )) {
      h.update(`${rel}/${e.name}\0`)
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}/${e.name}`)
      else h.update(await readFile(join(d, e.name)))
    }
  }
  await walk(dir, '')
  return h.digest('hex')
}

describe('the cache service over Azurite, through @actions/cache', () => {
  let service: CacheService
  let world: World
  const saved = { ...process.env }
  const cwd = process.cwd()
  // @actions/cache globs relative paths from the working directory and tars them
  // from GITHUB_WORKSPACE; on a runner both are the workspace.
  const rel = '.nix-store-cache/pack'

  beforeAll(async () => {
    service = await startCacheService()
    world = await makeWorld()
    Object.assign(process.env, service.env, {
      RUNNER_TEMP: world.runnerTemp,
      GITHUB_WORKSPACE: world.workspace
    })
    process.chdir(world.workspace)
  })
  afterAll(async () => {
    process.chdir(cwd)
    process.env = saved
    await service.stop()
    await removeWorld(world)
  })

  async function fill(seed: string): Promise<string> {
    const dir = join(world.workspace, rel)
    await rm(dir, { recursive: true, force: true })
    await mkdir(join(dir, 'sub'), { recursive: true })
    await writeFile(join(dir, 'a.txt'), `alpha ${seed}\n`)
    // Incompressible bytes, so the archive has a real size.
    await writeFile(join(dir, 'sub', 'random.bin'), randomBytes(2 * 1024 * 1024))
    return treeHash(dir)
  }

  it('round-trips a directory byte-identical', async () => {
    const before = await fill('one')
    expect(await cache.saveCache([rel], 'rig-key-1')).toBeGreaterThan(0)
    await rm(join(world.workspace, rel), { recursive: true })
    expect(await cache.restoreCache([rel], 'rig-key-1')).toBe('rig-key-1')
    expect(await treeHash(join(world.workspace, rel))).toBe(before)
    const entry = service.entries().find(e => e.key === 'rig-key-1')
    expect(entry?.sizeBytes).toBeGreaterThan(2 * 1024 * 1024)
  })

  it('answers a miss with undefined', async () => {
    expect(await cache.restoreCache([rel], 'rig-absent')).toBeUndefined()
  })

  it('finds the newest entry by restore-key prefix', async () => {
    await fill('older')
    expect(await cache.saveCache([rel], 'rig-prefix-a')).toBeGreaterThan(0)
    const newest = await fill('newer')
    expect(await cache.saveCache([rel], 'rig-prefix-b')).toBeGreaterThan(0)
    await rm(join(world.workspace, rel), { recursive: true })
    expect(await cache.restoreCache([rel], 'rig-none', ['rig-prefix-'])).toBe('rig-prefix-b')
    expect(await treeHash(join(world.workspace, rel))).toBe(newest)
  })

  it('refuses a second save of a key the way the service does', async () => {
    await fill('again')
    const before = service.entries().length
    expect(await cache.saveCache([rel], 'rig-key-1')).toBe(-1)
    expect(service.entries().length).toBe(before)
  })
})

describe("the cache service with a runner's link", () => {
  it('adds the round trip to every call and paces blob bytes to the cap', async () => {
    const service = await startCacheService({
      link: {
        rttMs: 100,
        uploadBytesPerSecond: 8 * 1024 * 1024,
        downloadBytesPerSecond: 8 * 1024 * 1024
      }
    })
    const w = await makeWorld()
    const saved = { ...process.env }
    const cwd = process.cwd()
    try {
      Object.assign(process.env, service.env, {
        RUNNER_TEMP: w.runnerTemp,
        GITHUB_WORKSPACE: w.workspace
      })
      process.chdir(w.workspace)
      const rel = 'linked'
      await mkdir(rel)
      await writeFile(join(rel, 'random.bin'), randomBytes(4 * 1024 * 1024))
      // Lower bounds only: the emulation must cost at least what the link would.
      let t = performance.now()
      expect(await cache.restoreCache([rel], 'absent')).toBeUndefined()
      expect(performance.now() - t).toBeGreaterThanOrEqual(100) // one call
      t = performance.now()
      expect(await cache.saveCache([rel], 'linked-1')).toBeGreaterThan(0)
      expect(performance.now() - t).toBeGreaterThanOrEqual(4000 / 8 + 2 * 100) // 4 MiB at 8 MiB/s, two calls
      await rm(rel, { recursive: true })
      t = performance.now()
      expect(await cache.restoreCache([rel], 'linked-1')).toBe('linked-1')
      expect(performance.now() - t).toBeGreaterThanOrEqual(4000 / 8 + 100)
    } finally {
      process.chdir(cwd)
      process.env = saved
      await service.stop()
      await removeWorld(w)
    }
  })
})
