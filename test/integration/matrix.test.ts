// Matrix jobs sharing one cache: snapshots hold their own set's closure, the
// package index makes any combination of cached packages a full hit, split
// packs keep old snapshots exact. Real nix, both backends; each job in a fresh
// location, as on a fresh runner. Nix's own --verify is the oracle.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { depsPrefix } from '../../src/keys.js'
import { startCacheService, type CacheService } from '../rig/cache-service.js'
import { contextFor, job, type JobOptions, type JobResult } from '../rig/jobs.js'
import { makeWorld, nixPortable, removeWorld, storeDir, type World } from '../rig/world.js'

describe.each(['local', 'github'] as const)('matrix jobs on the %s backend', backend => {
  const worlds: World[] = []
  let service: CacheService | undefined
  let cacheDir: string
  const savedEnv = { ...process.env }

  async function fresh(): Promise<World> {
    const w = await makeWorld()
    worlds.push(w)
    return w
  }
  // Each test has a key of its own: only the closest-snapshot lookup (any key)
  // crosses between them.
  let key = ''
  function opts(deps: string, run = 'true'): JobOptions {
    return { deps, backend, cacheDir, run, key }
  }
  async function run(deps: string, runCmd?: string): Promise<{ w: World; r: JobResult }> {
    const w = await fresh()
    return { w, r: await job(w, opts(deps, runCmd)) }
  }
  async function verified(w: World): Promise<void> {
    const v = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
    expect(v.code, v.stderr).toBe(0)
    expect(v.stderr).not.toMatch(/disappeared|modified|not valid/)
  }
  const has = (w: World, name: string): boolean =>
    readdirSync(storeDir(w)).some(n => n.endsWith(`-${name}`))
  function keys(): string[] {
    if (service) return service.entries().map(e => e.key)
    return readdirSync(cacheDir).map(n => n.replace(/\.tar\.zst$/, ''))
  }

  beforeAll(async () => {
    const root = await fresh()
    cacheDir = join(root.root, 'cache')
    mkdirSync(cacheDir)
    if (backend === 'github') {
      service = await startCacheService()
      Object.assign(process.env, service.env, { RUNNER_TEMP: root.runnerTemp })
    }
  })
  afterAll(async () => {
    process.env = savedEnv
    await service?.stop()
    for (const w of worlds) await removeWorld(w)
  })

  it('a small package that once fell back to a big one restores only its own closure', async () => {
    key = 'small'
    await run('bigbin')
    const first = await run('filler1')
    expect(first.r.restore.source).toBe('partial') // the shell's index entry, the closest snapshot
    expect(has(first.w, 'bigbin-1.0')).toBe(true)
    expect(first.r.builds).toBe(1)

    const again = await run('filler1')
    expect(again.r.restore.source).toBe('snapshot')
    expect(again.r.restore.cacheHit).toBe(true)
    expect(again.r.builds).toBe(0)
    expect(has(again.w, 'bigbin-1.0')).toBe(false)
    const closure = again.r.restore.closureBytes!
    expect(closure).toBeGreaterThan(0)
    expect(again.r.restore.bytesRestored).toBeLessThanOrEqual(closure * 1.1)
    await verified(again.w)
  })

  it('a new combination of cached packages builds nothing, in any order', async () => {
    key = 'combination'
    await run('hello')
    await run('figlet')
    const before = keys()
    const combo = await run('figlet hello', 'hello && figlet x')
    expect(combo.r.restore.source).toBe('packages')
    expect(combo.r.restore.cacheHit).toBe(true)
    expect(combo.r.builds).toBe(0)
    expect(combo.r.shell.stdout).toBe('Hello, world!\nFIGLET x\n')
    expect(combo.r.log.warnings).toEqual([])
    expect(has(combo.w, 'bigbin-1.0')).toBe(false)
    await verified(combo.w)
    // Nothing new but its own snapshot, so the next such job needs one lookup.
    const added = keys().filter(k => !before.includes(k))
    expect(added).toHaveLength(1)
    const prefix = depsPrefix((await contextFor(combo.w, opts('hello figlet'))).keys)
    expect(added[0]!.startsWith(prefix)).toBe(true)

    const reversed = await run('hello figlet')
    expect(reversed.r.restore.source).toBe('snapshot')
    expect(reversed.r.restore.matchedKey).toBe(added[0])
    expect(reversed.r.builds).toBe(0)
    expect(reversed.r.save?.outcome).toMatch(/Nothing new/)
  })

  it('splits a pack along what two sets share; the old set still restores exactly', async () => {
    key = 'split'
    const app = await run('bigapp')
    expect(app.r.builds).toBeGreaterThan(0)
    // bigbin alone: the shell's entry, then bigapp's snapshot, whose pack holds both.
    const bin = await run('bigbin figlet')
    expect(bin.r.restore.source).toBe('partial')
    expect(bin.r.save?.outcome).toMatch(/split 1 restored pack/)
    expect(bin.r.save?.outcome).toMatch(/now naming the split packs/)

    const appAgain = await run('bigapp', 'bigapp')
    expect(appAgain.r.restore.source).toBe('snapshot')
    expect(appAgain.r.restore.cacheHit).toBe(true)
    expect(appAgain.r.builds).toBe(0)
    expect(appAgain.r.shell.stdout).toBe('bigbin\n')
    expect(appAgain.r.save?.outcome).toMatch(/Nothing new/)
    await verified(appAgain.w)
    const binAgain = await run('bigbin')
    expect(binAgain.r.restore.cacheHit).toBe(true)
    expect(binAgain.r.builds).toBe(0)
    expect(has(binAgain.w, 'bigapp-1.0')).toBe(false)
    expect(binAgain.r.restore.bytesRestored).toBeLessThanOrEqual(
      binAgain.r.restore.closureBytes! * 1.1
    )
    await verified(binAgain.w)
  })

  it('a pack evicted from under an index entry: only it is built, and the save mends the index', async () => {
    key = 'evicted'
    await run('filler2')
    const cow = await run('cowsay')
    const evicted = cow.r.save!.packKey!
    if (service) service.remove(evicted)
    else rmSync(join(cacheDir, `${evicted}.tar.zst`))

    const combo = await run('cowsay filler2', 'cowsay moo')
    expect(combo.r.restore.source).toBe('packages')
    expect(combo.r.restore.cacheHit).toBe(false)
    const gone = new RegExp(`Pack ${evicted} is no longer in the cache .*: its (\\d+) paths`)
    expect(combo.r.log.warnings).toHaveLength(1)
    const lost = Number(gone.exec(combo.r.log.warnings[0]!)?.[1])
    expect(lost).toBeGreaterThan(0)
    expect(combo.r.builds).toBe(lost) // every path of the pack is an output built here
    expect(combo.r.shell.stdout).toMatch(/< moo Hello, world! >/)
    await verified(combo.w)

    const mended = await run('cowsay')
    expect(mended.r.log.warnings).toEqual([])
    expect(mended.r.builds).toBe(0)
    expect(existsSync(storeDir(mended.w))).toBe(true)
    await verified(mended.w)
  })
})
