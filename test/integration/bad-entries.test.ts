// Every kind of bad cache entry: a warning naming the entry, the store and the
// database exactly as before, and the job going on as a cache miss.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync
} from 'node:fs'
import { chmod } from 'node:fs/promises'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { restoreSnapshot } from '../../src/snapshot/restore.js'
import { saveSnapshot } from '../../src/snapshot/save.js'
import { contextFor, job, RecordingLogger, storeFingerprint } from '../rig/jobs.js'
import { build, requisites } from '../rig/store.js'
import {
  countBuilds,
  makeWorld,
  nixPortable,
  removeWorld,
  storeDir,
  type World
} from '../rig/world.js'

const DEPS = 'hello cowsay'
const worlds: World[] = []
let good: string // a cache folder with one good snapshot and its pack
let packFile: string
let snapshotFile: string

async function world(): Promise<World> {
  const w = await makeWorld()
  worlds.push(w)
  return w
}

beforeAll(async () => {
  const w = await world()
  good = join(w.root, 'good-cache')
  await job(w, { deps: DEPS, backend: 'local', cacheDir: good })
  // The snapshot and its pack alone: with the package index there too, a broken
  // snapshot would not leave the store untouched (matrix.test.ts tests the index).
  for (const f of readdirSync(good)) if (f.includes('-index-')) rmSync(join(good, f))
  const files = readdirSync(good)
  expect(files).toHaveLength(2)
  packFile = files.find(f => f.includes('-pack-'))!
  snapshotFile = files.find(f => !f.includes('-pack-'))!
})
afterAll(async () => {
  for (const w of worlds) await removeWorld(w)
})

/** Unpacks an entry, lets `edit` change it, packs it again under the same name. */
async function tamper(file: string, edit: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = `${file}.d`
  mkdirSync(dir)
  execFileSync('tar', ['--use-compress-program', 'zstd -d -q', '-xf', file, '-C', dir])
  execFileSync('chmod', ['-R', 'u+w', dir])
  await edit(dir)
  execFileSync('tar', ['--use-compress-program', 'zstd -q', '-cf', file, '-C', dir, '.'])
}

function editPackJson(dir: string, edit: (paths: string[]) => string[]): void {
  const info = JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8')) as { paths: string[] }
  info.paths = edit(info.paths)
  writeFileSync(join(dir, 'pack.json'), JSON.stringify(info))
}

function firstStoreDir(dir: string): string {
  const name = readdirSync(join(dir, 'store')).find(n => n.endsWith('-hello'))!
  return join(dir, 'store', name)
}

const cases: [string, string, (cache: string) => void | Promise<void>][] = [
  ['a truncated archive', 'pack', cache => truncateSync(join(cache, packFile), 100)],
  [
    'a corrupt archive',
    'pack',
    cache => {
      const f = join(cache, packFile)
      const bytes = readFileSync(f)
      for (let i = 40; i < bytes.length - 8; i += 7) bytes[i] = bytes[i]! ^ 0x5a
      writeFileSync(f, bytes)
    }
  ],
  [
    'a pack.json that lies about its paths',
    'pack',
    cache =>
      tamper(join(cache, packFile), dir =>
        editPackJson(dir, paths => [...paths, '/nix/store/00000000000000000000000000000000-extra'])
      )
  ],
  [
    'rows without folders',
    'pack',
    cache =>
      tamper(join(cache, packFile), async dir => {
        const victim = firstStoreDir(dir)
        await chmod(victim, 0o755)
        execFileSync('rm', ['-rf', victim])
        editPackJson(dir, paths => paths.filter(p => !p.endsWith('-hello')))
      })
  ],
  [
    'a folder name that is not a store path',
    'pack',
    cache => tamper(join(cache, packFile), dir => mkdirSync(join(dir, 'store', 'not-a-store-path')))
  ],
  [
    'a link escaping the store',
    'pack',
    cache =>
      tamper(join(cache, packFile), async dir => {
        const victim = firstStoreDir(dir)
        await chmod(victim, 0o755)
        symlinkSync('../../../etc/passwd', join(victim, 'escape'))
      })
  ],
  [
    'a file changed inside a pack',
    'pack',
    cache =>
      tamper(join(cache, packFile), async dir => {
        const bin = join(firstStoreDir(dir), 'bin', 'hello')
        await chmod(bin, 0o755)
        writeFileSync(bin, '#!/bin/sh\necho altered\n')
      })
  ],
  [
    'an absolute link added to a path',
    'pack',
    cache =>
      tamper(join(cache, packFile), async dir => {
        const victim = firstStoreDir(dir)
        await chmod(victim, 0o755)
        symlinkSync('/etc/passwd', join(victim, 'passwd'))
      })
  ],
  [
    "a row's NAR hash replaced",
    'pack',
    cache =>
      tamper(join(cache, packFile), dir => {
        const db = new Database(join(dir, 'db.sqlite'))
        db.prepare("UPDATE ValidPaths SET hash = ? WHERE path LIKE '%-hello'").run(
          `sha256:${'0'.repeat(64)}`
        )
        db.close()
      })
  ],
  [
    'a link that resolves outside through another link',
    'pack',
    cache =>
      tamper(join(cache, packFile), async dir => {
        const bin = join(firstStoreDir(dir), 'bin')
        await chmod(bin, 0o755)
        symlinkSync('/elsewhere', join(bin, 'up'))
        symlinkSync('up/../../../etc', join(bin, 'rel'))
      })
  ],
  [
    'a stray file beside db.sqlite',
    'pack',
    cache => tamper(join(cache, packFile), dir => writeFileSync(join(dir, 'db.sqlite-journal'), ''))
  ],
  [
    'a snapshot that is not JSON',
    'snapshot',
    cache =>
      tamper(join(cache, snapshotFile), dir => writeFileSync(join(dir, 'snapshot.json'), '{'))
  ],
  [
    'a snapshot naming a pack that is gone',
    'pack',
    cache => execFileSync('rm', [join(cache, packFile)])
  ]
]

/** The reason each case must be refused for: each check, not some other failure. */
const REASONS: Record<string, RegExp> = {
  // What zstd said comes first, then the command.
  'a truncated archive':
    /is unusable: .*premature end.*\(tar --use-compress-program zstd -d -q .*: exit 2\)/,
  'a corrupt archive': /is unusable: .*\(tar --use-compress-program zstd -d -q .*: exit 2\)/,
  'a pack.json that lies about its paths': /folders \(\d+\) do not match pack\.json/,
  'rows without folders': /db\.sqlite's rows \(\d+\) do not match/,
  'a folder name that is not a store path': /store\/not-a-store-path is not a store path name/,
  'a link escaping the store':
    /links to \.\.\/\.\.\/\.\.\/etc\/passwd, which resolves to \/etc\/passwd, outside the store/,
  'a file changed inside a pack': /-hello does not match its row: NAR sha256:/,
  'an absolute link added to a path': /-hello does not match its row: NAR sha256:/,
  "a row's NAR hash replaced": /-hello does not match its row: .*row sha256:0{64}/,
  'a link that resolves outside through another link':
    /bin\/rel links to up\/\.\.\/\.\.\/\.\.\/etc, which resolves to \/etc, outside the store/,
  'a stray file beside db.sqlite': /holds db\.sqlite-journal besides db\.sqlite, pack\.json, store/,
  'a snapshot that is not JSON': /snapshot\.json is missing or not JSON/,
  'a snapshot naming a pack that is gone': /no longer in the cache \(evicted\?\)/
}

describe('a bad cache entry', () => {
  it.each(cases)(
    '%s: warns, leaves store and database as they were, goes on',
    async (what, entry, breakIt) => {
      const cache = join((await world()).root, 'cache')
      cpSync(good, cache, { recursive: true })
      await breakIt(cache)

      // A runner with a store of its own.
      const runner = await world()
      await build(runner, ['figlet'])
      const before = storeFingerprint(runner)

      const log = new RecordingLogger()
      const ctx = await contextFor(runner, { deps: DEPS, backend: 'local', cacheDir: cache }, log)
      const r = await restoreSnapshot(ctx)
      expect(r.pathsRestored).toBe(0)
      expect(log.warnings).toHaveLength(1)
      const key = (entry === 'pack' ? packFile : snapshotFile).replace('.tar.zst', '')
      expect(log.warnings[0]).toContain(key)
      expect(log.warnings[0]).toMatch(REASONS[what]!)
      expect(storeFingerprint(runner)).toBe(before)

      // The job goes on: nix builds what the cache could not give.
      const shell = await nixPortable(runner, [
        'nix-shell',
        '-p',
        'hello',
        'cowsay',
        '--run',
        'hello'
      ])
      expect(shell.stdout).toBe('Hello, world!\n')
      expect(countBuilds(shell.stderr)).toBeGreaterThan(0)

      // The entry heals: this job saves what it built, never naming the broken
      // entry, and a fresh job then builds nothing.
      await saveSnapshot(ctx, r.state)
      const fresh = await world()
      const again = await job(fresh, {
        deps: DEPS,
        backend: 'local',
        cacheDir: cache,
        run: 'hello'
      })
      expect(again.log.warnings).toEqual([])
      expect(again.restore.cacheHit).toBe(true)
      expect(again.builds).toBe(0)
      expect(again.shell.stdout).toBe('Hello, world!\n')
      const verify = await nixPortable(fresh, ['nix-store', '--verify', '--check-contents'])
      expect(verify.code).toBe(0)
      expect(verify.stderr).not.toMatch(/modified|disappeared/)
    }
  )
})

describe('a good entry with links', () => {
  it('keeps links inside the store and to the host, and a link loop does not hang the check', async () => {
    const cacheDir = join((await world()).root, 'cache')
    const src = await world()
    await job(src, { deps: 'linky', backend: 'local', cacheDir })
    const dst = await world()
    const r = await job(dst, {
      deps: 'linky',
      backend: 'local',
      cacheDir,
      run: 'cat $(dirname $(command -v readme))/readme'
    })
    expect(r.log.warnings).toEqual([])
    expect(r.builds).toBe(0)
    expect(r.shell.stdout).toBe('doc\n')
    expect((await nixPortable(dst, ['nix-store', '--verify', '--check-contents'])).code).toBe(0)
  })
})

describe('an evicted pack', () => {
  it('restores the packs that are left; Nix builds the rest and the save stores it again', async () => {
    const cache = join((await world()).root, 'cache')
    const deps = `${DEPS} figlet`
    await job(await world(), { deps: DEPS, backend: 'local', cacheDir: cache })
    const second = await job(await world(), { deps, backend: 'local', cacheDir: cache })
    const evicted = second.save!.packKey!
    execFileSync('rm', [join(cache, `${evicted}.tar.zst`)])

    const w = await world()
    const r = await job(w, { deps, backend: 'local', cacheDir: cache, run: 'figlet again' })
    expect(r.log.warnings).toHaveLength(1)
    expect(r.log.warnings[0]).toMatch(new RegExp(`Pack ${evicted} is no longer in the cache`))
    // Not everything the job needs came from the cache.
    expect(r.restore.cacheHit).toBe(false)
    // The closure of hello and cowsay, and the shell's stdenv and bash.
    expect(r.restore.pathsRestored).toBe(5)
    expect(r.builds).toBe(1) // figlet alone
    expect(r.shell.stdout).toBe('FIGLET again\n')
    expect(r.save?.pathsSaved).toBeGreaterThan(0)
    // The same paths again: the same key, so the snapshot that named it is whole again.
    expect(r.save?.packKey).toBe(evicted)
    expect(existsSync(join(cache, `${evicted}.tar.zst`))).toBe(true)
    expect((await nixPortable(w, ['nix-store', '--verify', '--check-contents'])).code).toBe(0)
  })
})

describe('a runner database with an unknown schema', () => {
  it('is refused with a clear warning and left untouched; restore and save go on', async () => {
    const cache = join((await world()).root, 'cache')
    cpSync(good, cache, { recursive: true })
    const runner = await world()
    await build(runner, ['figlet'])
    writeFileSync(join(storeDir(runner), '..', 'var', 'nix', 'db', 'schema'), '11')
    const before = storeFingerprint(runner)
    const log = new RecordingLogger()
    const ctx = await contextFor(runner, { deps: DEPS, backend: 'local', cacheDir: cache }, log)
    const r = await restoreSnapshot(ctx)
    expect(r.pathsRestored).toBe(0)
    expect(log.warnings.join('\n')).toMatch(
      /schema version 11; nix-store-cache supports version 10/
    )
    expect(storeFingerprint(runner)).toBe(before)
    await expect(saveSnapshot(ctx, r.state)).rejects.toThrow(/schema version 11/)
    expect(storeFingerprint(runner)).toBe(before)
  })
})

describe('saving a store with rows whose folder is gone', () => {
  it('leaves those paths and their referrers out, with a warning, and the pack restores cleanly', async () => {
    const cache = join((await world()).root, 'cache')
    const runner = await world()
    const log = new RecordingLogger()
    const ctx = await contextFor(
      runner,
      { deps: 'hello figlet', backend: 'local', cacheDir: cache },
      log
    )
    const r = await restoreSnapshot(ctx)
    const [hello, figlet] = await build(runner, ['hello', 'figlet'])
    const greeting = (await requisites(runner, [hello!])).find(p => p.endsWith('-greeting-1.0'))!
    const folder = join(storeDir(runner), greeting.slice('/nix/store/'.length))
    await chmod(folder, 0o755)
    execFileSync('rm', ['-rf', folder])

    const s = await saveSnapshot(ctx, r.state)
    expect(log.warnings.join('\n')).toMatch(
      /1 registered path\(s\) have no folder .*not saving them or the 1 path\(s\) that refer to them/
    )
    expect(s.pathsSaved).toBeGreaterThan(0) // figlet and the .drv files nix-build registered

    const fresh = await world()
    const again = await restoreSnapshot(
      await contextFor(fresh, { deps: 'hello figlet', backend: 'local', cacheDir: cache })
    )
    expect(again.pathsRestored).toBe(s.pathsSaved)
    expect(await requisites(fresh, [figlet!])).toEqual([figlet])
    for (const p of [hello!, greeting]) {
      expect((await nixPortable(fresh, ['nix-store', '--check-validity', p])).code).not.toBe(0)
    }
    expect((await nixPortable(fresh, ['nix-store', '--verify', '--check-contents'])).code).toBe(0)
  })
})
