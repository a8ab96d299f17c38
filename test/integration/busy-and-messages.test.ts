// What a user sees when the database is held, the cache folder is unreadable,
// or PATH lists folders they cannot search.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { restoreSnapshot } from '../../src/snapshot/restore.js'
import {
  cli,
  contextFor,
  job,
  RecordingLogger,
  storeFingerprint,
  type JobOptions
} from '../rig/jobs.js'
import { build } from '../rig/store.js'
import { dbFile, makeWorld, removeWorld, type World } from '../rig/world.js'

const worlds: World[] = []
async function world(unprivileged = false): Promise<World> {
  const w = await makeWorld({ unprivileged })
  worlds.push(w)
  return w
}
afterAll(async () => {
  for (const w of worlds) await removeWorld(w)
})

let cache: string
const opts = (): JobOptions => ({ deps: 'hello cowsay', backend: 'local', cacheDir: cache })
beforeAll(async () => {
  cache = join((await world()).root, 'cache')
  await job(await world(), opts())
})

/** Another process holding the database in an exclusive transaction for `ms`. */
async function holdDb(file: string, ms: number): Promise<ChildProcess> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3')
  const code = `const D = require(${JSON.stringify(sqlite)}); const db = new D(${JSON.stringify(file)});
    db.exec('BEGIN EXCLUSIVE'); console.log('locked');
    setTimeout(() => { db.exec('COMMIT'); db.close() }, ${ms})`
  const child = spawn(process.execPath, ['-e', code])
  await new Promise(r => child.stdout.once('data', r))
  return child
}

describe('a Nix database held by another process', () => {
  it('is waited for, with a word in the log, and the restore then completes', async () => {
    const runner = await world()
    await build(runner, ['figlet'])
    const log = new RecordingLogger()
    const ctx = await contextFor(runner, opts(), log)
    ctx.busy = { limitMs: 20_000, everyMs: 500 }
    const holder = await holdDb(dbFile(runner), 3000)
    const r = await restoreSnapshot(ctx)
    holder.kill()
    expect(log.infos.join('\n')).toMatch(/is locked by another process .*waiting, \d+ s so far/)
    expect(r.cacheHit).toBe(true)
    expect(r.pathsRestored).toBeGreaterThan(3)
  })

  it('past the limit: a warning, a miss that is never called a hit, nothing touched', async () => {
    const runner = await world()
    await build(runner, ['figlet'])
    const before = storeFingerprint(runner)
    const log = new RecordingLogger()
    const ctx = await contextFor(runner, opts(), log)
    ctx.busy = { limitMs: 1500, everyMs: 500 }
    const holder = await holdDb(dbFile(runner), 20_000)
    const r = await restoreSnapshot(ctx)
    holder.kill()
    expect(r.cacheHit).toBe(false)
    expect(r.pathsRestored).toBe(0)
    expect(log.warnings.join('\n')).toMatch(
      /db\.sqlite is still locked by another process after \d+ s/
    )
    expect(storeFingerprint(runner)).toBe(before)
  })
})

describe('messages', () => {
  it('says an unreadable cache folder is unreadable, and the job goes on', async () => {
    const w = await world(true)
    const locked = join(w.root, 'locked-cache')
    mkdirSync(locked, { mode: 0o700 }) // root's, not the runner user's
    const r = await cli(w, 'run', { ...opts(), cacheDir: locked, run: 'hello' })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Hello, world!/)
    expect(r.stderr).toMatch(/cache folder .*locked-cache cannot be read \(EACCES\)/)
  })

  it('finds nix-portable on a PATH with folders the user cannot search, quietly', async () => {
    const w = await world(true)
    const rootOnly = join(w.root, 'root-only-bin')
    mkdirSync(rootOnly)
    chmodSync(rootOnly, 0o700)
    const path = `${rootOnly}:${dirname(w.launcher)}:/usr/sbin:/usr/bin:/sbin:/bin`
    const r = await cli(w, 'restore', { ...opts(), inputs: { 'nix-portable': '' } }, { PATH: path })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/nix-portable: .*rig\/nix-portable/)
    expect(r.stdout + r.stderr).not.toMatch(/Unexpected error/)
  })
})
