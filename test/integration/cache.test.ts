// The cache end to end through the pipeline: real nix, real tar/zstd, both
// backends (a local directory; the cache service with Azurite through
// @actions/cache), judged by nix-store --verify and build counts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import {
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  statSync,
  utimesSync,
  writeFileSync
} from 'node:fs'
import { chmod, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { GithubBackend } from '../../src/backend/index.js'
import { startCacheService, type CacheService } from '../rig/cache-service.js'
import { restoreSnapshot } from '../../src/snapshot/restore.js'
import { saveSnapshot } from '../../src/snapshot/save.js'
import { cli, contextFor, job, RecordingLogger, type JobOptions } from '../rig/jobs.js'
import { build, dumpDb, requisites } from '../rig/store.js'
import {
  countBuilds,
  dbFile,
  makeWorld,
  nixPortable,
  NOBODY,
  removeWorld,
  storeDir,
  type World
} from '../rig/world.js'

const DEPS = 'hello cowsay bigbin'

describe.each(['local', 'github'] as const)('the %s backend', backend => {
  const worlds: World[] = []
  let service: CacheService | undefined
  let cacheRoot: World
  const savedEnv = { ...process.env }

  async function world(unprivileged = false): Promise<World> {
    const w = await makeWorld({ unprivileged })
    worlds.push(w)
    return w
  }
  function opts(deps = DEPS): JobOptions {
    return { deps, backend, cacheDir: join(cacheRoot.root, 'cache') }
  }
  /** Entry key -> stored bytes. */
  function entries(): Map<string, number> {
    if (service) return new Map(service.entries().map(e => [e.key, e.sizeBytes]))
    const dir = join(cacheRoot.root, 'cache')
    return new Map(
      readdirSync(dir)
        .filter(n => n.endsWith('.tar.zst'))
        .map(n => [n.slice(0, -'.tar.zst'.length), statSync(join(dir, n)).size])
    )
  }

  beforeAll(async () => {
    // A cache folder both root's and the unprivileged user's jobs use.
    cacheRoot = await world(true)
    mkdirSync(join(cacheRoot.root, 'cache'))
    chownSync(join(cacheRoot.root, 'cache'), NOBODY.uid, NOBODY.gid)
    if (backend === 'github') {
      service = await startCacheService()
      Object.assign(process.env, service.env, { RUNNER_TEMP: cacheRoot.runnerTemp })
    }
  })
  afterAll(async () => {
    process.env = savedEnv
    await service?.stop()
    for (const w of worlds) await removeWorld(w)
  })

  it('saves a cold run; a warm run elsewhere restores it, builds nothing and nix verifies it', async () => {
    const cold = await world()
    const first = await job(cold, { ...opts(), run: 'cowsay cold' })
    expect(first.restore.cacheHit).toBe(false)
    expect(first.builds).toBeGreaterThan(0)
    expect(first.save?.pathsSaved).toBeGreaterThan(5)
    expect(first.shell.stdout).toBe(' < cold Hello, world! >\n')

    const warm = await world()
    const second = await job(warm, { ...opts(), run: 'cowsay warm' })
    expect(second.restore.cacheHit).toBe(true)
    expect(second.restore.pathsRestored).toBe(first.save?.pathsSaved)
    expect(second.builds).toBe(0)
    expect(second.shell.stdout).toBe(' < warm Hello, world! >\n')
    const verify = await nixPortable(warm, ['nix-store', '--verify', '--check-contents'])
    expect(verify.code).toBe(0)
    expect(verify.stderr).not.toMatch(/disappeared|modified|not valid/)
    expect(second.log.warnings).toEqual([])
  })

  it('uploads one small pack for one more package, and nothing when nothing is new', async () => {
    const before = entries()
    const w = await world()
    const nothing = await job(w, opts())
    expect(nothing.save?.outcome).toMatch(/Nothing new/)
    expect(entries()).toEqual(before)

    const more = await world()
    const r = await job(more, { ...opts(`${DEPS} figlet`), run: 'figlet hi' })
    expect(r.restore.cacheHit).toBe(false) // a new dependency set starts from the closest snapshot
    expect(r.restore.pathsRestored).toBeGreaterThan(5)
    expect(r.builds).toBe(1) // figlet alone
    expect(r.save?.pathsSaved).toBe(1) // figlet: derivations are written by evaluation, not saved
    const after = entries()
    const added = [...after.keys()].filter(k => !before.has(k))
    // One pack, one snapshot, and an index entry for figlet alone: the others' did not change.
    expect(added.filter(k => k.includes('-pack-'))).toHaveLength(1)
    expect(added.filter(k => k.includes('-index-'))).toHaveLength(1)
    expect(added).toHaveLength(3)
    const biggest = Math.max(...before.values())
    for (const k of added) expect(after.get(k)!).toBeLessThan(biggest / 10)
  })

  it("restores into a store whose nix uses SQLite's WAL (Debian's nix)", async () => {
    const w = await makeWorld({ wal: true })
    worlds.push(w)
    await build(w, ['figlet'])
    const r = await job(w, { ...opts(), run: 'hello' })
    expect(r.restore.cacheHit).toBe(true)
    expect(r.builds).toBe(0)
    expect(r.log.warnings).toEqual([])
    expect((await nixPortable(w, ['nix-store', '--verify', '--check-contents'])).code).toBe(0)
  })

  it('keeps every path a location already had', async () => {
    const own = await world()
    const mine = await build(own, ['figlet', 'multi.out', 'multi.dev'])
    const mineClosure = await requisites(own, mine)
    const dumpBefore = await dumpDb(own, mineClosure)
    const r = await job(own, { ...opts(), run: 'hello' })
    expect(r.restore.cacheHit).toBe(true)
    expect(r.builds).toBe(0)
    expect(await dumpDb(own, mineClosure)).toEqual(dumpBefore)
    expect(await requisites(own, mine)).toEqual(mineClosure)
    expect((await nixPortable(own, ['nix-store', '--verify', '--check-contents'])).code).toBe(0)
  })

  it('in a location whose nix-portable cannot start, a hit restores nothing and says why; a miss stays quiet', async () => {
    const w = await world()
    // The same nix-portable (the same keys) with a runtime that cannot start
    // here, as bwrap where user namespaces are off: the location's Nix never
    // runs, so it never makes the database the restore would merge into.
    const inputs = { runtime: 'nix' }
    // Only what the launcher makes as it starts: an empty store folder.
    const untouched = (): void => {
      expect(existsSync(dbFile(w))).toBe(false)
      expect(readdirSync(storeDir(w))).toEqual([])
    }
    const log = new RecordingLogger()
    const hit = await restoreSnapshot(await contextFor(w, { ...opts(), inputs }, log))
    expect(hit.cacheHit).toBe(false)
    expect(hit.pathsRestored).toBe(0)
    expect(log.warnings).toHaveLength(1)
    expect(log.warnings[0]).toMatch(/database could not be prepared.*not supported by the rig/s)
    untouched()

    // Any set finds the closest snapshot of a cache that has one: an empty
    // cache folder for the miss (the test cache service is shared by all).
    if (backend !== 'local') return
    const empty = join(w.root, 'empty-cache')
    mkdirSync(empty)
    const quiet = new RecordingLogger()
    const miss = await restoreSnapshot(
      await contextFor(w, { ...opts(), cacheDir: empty, inputs }, quiet)
    )
    expect(miss.source).toBe('none')
    expect(quiet.warnings).toEqual([]) // nix-shell reports a Nix that cannot start
    untouched()
  })

  it('repairs rows whose folder is gone, and brings those paths back from the cache', async () => {
    const w = await world()
    await job(w, opts()) // restores the snapshot: hello, cowsay, bigbin
    const greeting = (await requisites(w, await build(w, ['hello']))).find(p =>
      p.endsWith('-greeting-1.0')
    )!
    const folder = join(w.location, '.nix-portable', greeting.slice(1))
    await chmod(folder, 0o755)
    await rm(folder, { recursive: true })
    expect((await nixPortable(w, ['nix-store', '--verify'])).stderr).toMatch(/disappeared/)

    const r = await job(w, { ...opts(), run: 'cowsay back' })
    expect(r.log.warnings.join('\n')).toMatch(
      /3 registered path\(s\) had no folder or referred to one/
    )
    expect(r.restore.pathsRestored).toBe(3) // greeting, hello, cowsay
    expect(r.builds).toBe(0)
    expect(r.shell.stdout).toBe(' < back Hello, world! >\n')
    const verify = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
    expect(verify.code).toBe(0)
    expect(verify.stderr).not.toMatch(/disappeared|still has valid referrers/)
  })

  it('lets two jobs save from the same snapshot at once', async () => {
    const [a, b] = [await world(true), await world(true)]
    const o = opts(`${DEPS} multi`)
    for (const w of [a, b]) {
      const r = await cli(w, 'restore', o, service?.env)
      expect(r.code, r.stderr).toBe(0)
      const shell = await nixPortable(w, [
        'nix-shell',
        '-p',
        'hello',
        'cowsay',
        'bigbin',
        'multi',
        '--run',
        'true'
      ])
      expect(countBuilds(shell.stderr)).toBe(1) // multi
    }
    const before = entries().size
    const packsBefore = [...entries().keys()].filter(k => k.includes('-pack-')).length
    const [sa, sb] = await Promise.all([
      cli(a, 'save', o, service?.env),
      cli(b, 'save', o, service?.env)
    ])
    expect(sa.code, sa.stderr).toBe(0)
    expect(sb.code, sb.stderr).toBe(0)
    const said = sa.stdout + sb.stdout
    expect(said).toMatch(/Saved pack/)
    // The same pack stored once; each save writes its own small snapshot and
    // index entry for multi (keys are unique: neither save can fail the other).
    expect(entries().size).toBe(before + 5)
    expect([...entries().keys()].filter(k => k.includes('-pack-')).length).toBe(packsBefore + 1)
    expect(sa.stderr + sb.stderr).not.toMatch(/warning/i)
  })

  it('lets two restores into one location take turns', async () => {
    const w = await world(true)
    const [a, b] = await Promise.all([
      cli(w, 'restore', opts(), service?.env),
      cli(w, 'restore', opts(), service?.env)
    ])
    expect(a.code, a.stderr).toBe(0)
    expect(b.code, b.stderr).toBe(0)
    expect(a.stderr + b.stderr).not.toMatch(/warning/i)
    const restored = [a, b].map(r => Number(/(\d+) paths,/.exec(r.stdout)?.[1]))
    expect(restored.sort((x, y) => x - y)[0]).toBe(0) // the second found everything valid
    expect(restored.sort((x, y) => x - y)[1]).toBeGreaterThan(5)
    const verify = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
    expect(verify.code).toBe(0)
    expect(verify.stderr).not.toMatch(/disappeared|modified/)
  })

  it.runIf(backend === 'github')(
    'heals a pack whose blob was corrupted: the next save stores it under a new key',
    async () => {
      // Packages no other test here saves, so no fallback snapshot holds them.
      const o = { ...opts('filler11 filler12'), key: 'heal' }
      const first = await job(await world(), o)
      const broken = first.save!.packKey!
      await service!.overwrite(broken, Buffer.from('not an archive'))

      const second = await job(await world(), o)
      expect(second.restore.cacheHit).toBe(false)
      expect(second.builds).toBeGreaterThan(0)
      // @actions/cache cannot extract it and says so; keys are immutable, so the
      // same paths go under a new key, and the new snapshot names that one.
      expect(second.save!.packKey).not.toBe(broken)
      expect(second.save!.packKey!.startsWith(broken)).toBe(true)
      expect(second.log.infos.join('\n')).toMatch(/was broken or unreadable when restored/)

      const third = await job(await world(), o)
      expect(third.restore.cacheHit).toBe(true)
      expect(third.builds).toBe(0)
      expect(third.log.warnings).toEqual([])
    }
  )

  // A round trip per pack saved is the cost the issue names: a key that exists
  // is refused when reserved (409), so nothing asks first.
  it.runIf(backend === 'github')(
    'uploads without asking first; a key already there is known by the refusal',
    async () => {
      const w = await world()
      const b = new GithubBackend(w.workspace)
      const dir = b.slotDir('pack-0123456789abcdef0123456789abcdef')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'pack.json'), '{}')
      // A pack: its store trees come along.
      const storeDir = join(w.root, 'store')
      mkdirSync(join(storeDir, 'x-1.0'), { recursive: true })
      writeFileSync(join(storeDir, 'x-1.0', 'f'), 'x')
      const trees = { storeDir, names: ['x-1.0'] }
      const key = `no-lookup-${Date.now()}`
      const first = service!.calls.length
      expect(await b.save(dir, key, trees)).toEqual({ result: 'saved' })
      expect(service!.calls.slice(first)).toEqual(['CreateCacheEntry', 'FinalizeCacheEntryUpload'])
      const second = service!.calls.length
      expect(await b.save(dir, key, trees)).toEqual({ result: 'exists' })
      expect(service!.calls.slice(second)).toEqual(['CreateCacheEntry', 'GetCacheEntryDownloadURL'])
    }
  )

  it('runs cold and warm jobs as an unprivileged user through the CLI', async () => {
    const key = { key: 'unprivileged' }
    const cold = await world(true)
    const c = await cli(cold, 'run', { ...opts(), ...key, run: 'hello' }, service?.env)
    expect(c.code, c.stderr).toBe(0)
    expect(c.stdout).toMatch(/Hello, world!/)
    expect(c.stdout).toMatch(/Saved snapshot/)
    // The libraries' debug lines only with --verbose (the github backend has many).
    expect(c.stdout).not.toContain('::debug::')
    const warm = await world(true)
    const o = { ...opts(), ...key, run: 'cowsay hi', verbose: true }
    const w = await cli(warm, 'run', o, service?.env)
    expect(w.code, w.stderr).toBe(0)
    expect(w.stdout).not.toContain('::debug::')
    if (backend === 'github') expect(w.stdout).toMatch(/^debug: /m)
    expect(w.stdout).toMatch(/restore: hit/)
    expect(countBuilds(w.stderr)).toBe(0)
    expect(w.stdout).toMatch(/Nothing new/)
    const verify = await nixPortable(warm, ['nix-store', '--verify', '--check-contents'])
    expect(verify.code).toBe(0)
    expect(verify.stderr).not.toMatch(/disappeared|modified/)
  })

  // Last: on github its snapshot would be the newest, where the tests above
  // fall back to the newest snapshot of any dependency set.
  it('never saves a path whose files changed after nix registered it, nor what refers to it', async () => {
    const runner = await world()
    const log = new RecordingLogger()
    const o = { ...opts('hello figlet'), cacheDir: join(runner.root, 'own-cache') }
    const ctx = await contextFor(runner, o, log)
    // No restore: on github one would fall back to another test's snapshot,
    // whose paths (greeting among them) count as checked by that restore.
    const fresh0 = { version: 1, watermark: 0, cacheHit: false } as const
    const [hello, figlet] = await build(runner, ['hello', 'figlet'])
    const greeting = (await requisites(runner, [hello!])).find(p => p.endsWith('-greeting-1.0'))!
    // One byte more in a file of greeting, which hello refers to.
    const folder = join(storeDir(runner), greeting.slice('/nix/store/'.length))
    const file = join(folder, 'share', 'greeting')
    await chmod(folder, 0o755)
    await chmod(join(folder, 'share'), 0o755)
    await chmod(file, 0o644)
    writeFileSync(file, 'changed\n', { flag: 'a' })

    const s = await saveSnapshot(ctx, fresh0)
    expect(log.warnings.join('\n')).toMatch(
      /1 path\(s\) differ from what the Nix database says of them \(\S+-greeting-1\.0 does not match its row.*not saving them or the 1 path\(s\) that refer to them/
    )
    // On github another test may have saved figlet's pack already.
    expect(s.snapshotKey).toBeDefined()
    if (backend === 'local') {
      expect(s.pathsSaved).toBeGreaterThan(0)
      // Not in any entry, named or not: what the check refuses is never written.
      const archives = readdirSync(o.cacheDir).filter(n => n.endsWith('.tar.zst'))
      expect(archives.length).toBeGreaterThan(1)
      for (const a of archives) {
        const list = spawnSync('tar', [
          '--use-compress-program',
          'zstd -d',
          '-tf',
          join(o.cacheDir, a)
        ])
        expect(list.status).toBe(0)
        expect(list.stdout.toString()).not.toContain(greeting.slice('/nix/store/'.length))
      }
    }

    const fresh = await world()
    const again = await restoreSnapshot(await contextFor(fresh, o))
    expect(again.pathsRestored).toBeGreaterThan(0)
    expect(await requisites(fresh, [figlet!])).toEqual([figlet])
    for (const p of [hello!, greeting]) {
      expect((await nixPortable(fresh, ['nix-store', '--check-validity', p])).code).not.toBe(0)
    }
    const verify = await nixPortable(fresh, ['nix-store', '--verify', '--check-contents'])
    expect(verify.code, verify.stderr).toBe(0)
  })
})

describe('many packs', () => {
  it('saves one compacted pack past eight, which restores whole', async () => {
    const worlds: World[] = [await makeWorld()]
    const cacheDir = join(worlds[0]!.root, 'cache')
    try {
      let deps = 'hello'
      let last
      for (let i = 1; i <= 9; i++) {
        deps += ` filler${i}`
        const w = await makeWorld()
        worlds.push(w)
        last = await job(w, { deps, backend: 'local', cacheDir })
        expect(last.builds).toBe(i === 1 ? 5 : 1) // only the new filler after the first job
        if (i < 9) expect(last.restore.packsFetched).toBe(i - 1)
      }
      expect(last?.save?.pathsSaved).toBeGreaterThan(12) // everything, in one pack
      const fresh = await makeWorld()
      worlds.push(fresh)
      const warm = await job(fresh, { deps, backend: 'local', cacheDir })
      expect(warm.restore.cacheHit).toBe(true)
      expect(warm.restore.packsFetched).toBe(1)
      expect(warm.builds).toBe(0)
      expect((await nixPortable(fresh, ['nix-store', '--verify', '--check-contents'])).code).toBe(0)
    } finally {
      for (const w of worlds) await removeWorld(w)
    }
  })
})

describe('leftovers of dead jobs', () => {
  it('are swept: stage folders whatever pid they name, temp archives untouched for an hour', async () => {
    const w = await makeWorld()
    try {
      const dead = spawnSync('true').pid!
      const root = join(w.location, '.nix-store-cache')
      // Every restore and save holds the location's lock for its whole run, so
      // one found while holding it is a leftover, even one named for a live pid
      // (pid reuse, another pid namespace).
      const stale = join(root, `${dead}-0badc0de`)
      const reused = join(root, `${process.ppid}-0badc0de`)
      for (const d of [stale, reused]) mkdirSync(join(d, 'store', 'x'), { recursive: true })
      await chmod(join(stale, 'store'), 0o555) // as a half-moved pack would be
      const cache = join(w.root, 'cache')
      mkdirSync(cache)
      const oldTmp = join(cache, '.nix-store-cache-v1-x.1.ab.tmp')
      const newTmp = join(cache, '.nix-store-cache-v1-y.2.cd.tmp')
      for (const f of [oldTmp, newTmp]) writeFileSync(f, 'half an archive')
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
      utimesSync(oldTmp, twoHoursAgo, twoHoursAgo)
      await job(w, { deps: 'figlet', backend: 'local', cacheDir: cache })
      expect(readdirSync(root).filter(n => /^\d+-/.test(n))).toEqual([])
      expect(existsSync(oldTmp)).toBe(false)
      expect(existsSync(newTmp)).toBe(true) // may be another machine's save in progress
    } finally {
      await removeWorld(w)
    }
  })
})
