// Signed caches, in Nix's own format: keys made by nix, signatures checked by nix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { cpSync, readdirSync, readFileSync } from 'node:fs'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { restoreSnapshot } from '../../src/snapshot/restore.js'
import { narHashes } from '../../src/trust/nar-pool.js'
import { contextFor, job, RecordingLogger, storeFingerprint, type JobOptions } from '../rig/jobs.js'
import { build } from '../rig/store.js'
import { makeWorld, nixOk, nixPortable, removeWorld, type World } from '../rig/world.js'

const DEPS = 'hello cowsay'
const worlds: World[] = []
async function world(): Promise<World> {
  const w = await makeWorld()
  worlds.push(w)
  return w
}
afterAll(async () => {
  for (const w of worlds) await removeWorld(w)
})

interface KeyPair {
  secret: string
  public: string
}
/** `nix-store --generate-binary-cache-key`, as a user would make the keys. */
async function nixKey(w: World, name: string): Promise<KeyPair> {
  const sk = join(w.root, `${name}.sec`)
  const pk = join(w.root, `${name}.pub`)
  await nixOk(w, ['nix-store', '--generate-binary-cache-key', name, sk, pk])
  return { secret: readFileSync(sk, 'utf8'), public: readFileSync(pk, 'utf8') }
}

let keyA: KeyPair
let keyB: KeyPair
let signedCache: string
let unsignedCache: string

function opts(cacheDir: string, inputs: Record<string, string> = {}): JobOptions {
  return { deps: DEPS, backend: 'local', cacheDir, inputs, run: 'cowsay signed' }
}

beforeAll(async () => {
  const w = await world()
  keyA = await nixKey(w, 'ci-main-1')
  keyB = await nixKey(w, 'other-1')
  signedCache = join(w.root, 'signed')
  unsignedCache = join(w.root, 'unsigned')
  await job(await world(), opts(signedCache, { 'signing-key': keyA.secret }))
  await job(await world(), opts(unsignedCache))
})

describe('a signed cache', () => {
  it("restores under trusted-public-keys, and nix accepts every path's signature", async () => {
    const w = await world()
    const r = await job(w, opts(signedCache, { 'trusted-public-keys': keyA.public }))
    expect(r.log.warnings).toEqual([])
    expect(r.restore.cacheHit).toBe(true)
    expect(r.builds).toBe(0)
    expect(r.shell.stdout).toContain('signed')
    // Nix itself checks our signatures, trusting only key A.
    const nixVerify = (trusted: string): ReturnType<typeof nixPortable> =>
      nixPortable(w, [
        'nix',
        '--extra-experimental-features',
        'nix-command',
        'store',
        'verify',
        '--all',
        '--sigs-needed',
        '1',
        '--option',
        'trusted-public-keys',
        trusted.trim()
      ])
    const verify = await nixVerify(keyA.public)
    expect(verify.stderr).not.toMatch(/untrusted|lacks a signature|corrupted/)
    expect(verify.code, verify.stderr).toBe(0)
    // The same store with only another key trusted: nix refuses every path.
    const other = await nixVerify(keyB.public)
    expect(other.code).not.toBe(0)
    expect(other.stderr).toMatch(/untrusted/)
  })
})

describe('a cache the trusted keys did not sign', () => {
  it.each([
    [
      'unsigned',
      () => unsignedCache,
      () => keyA.public,
      /not signed by a trusted key \(ci-main-1\)/
    ],
    [
      'signed by a key that is not trusted',
      () => signedCache,
      () => keyB.public,
      /not signed by a trusted key \(other-1\)/
    ]
  ])(
    '%s: refused with a warning, the store untouched, nix builds',
    async (_, cache, trusted, reason) => {
      const runner = await world()
      const [figlet] = await build(runner, ['figlet'])
      const before = storeFingerprint(runner)
      const log = new RecordingLogger()
      const r = await restoreSnapshot(
        await contextFor(runner, opts(cache(), { 'trusted-public-keys': trusted() }), log)
      )
      expect(r.pathsRestored).toBe(0)
      expect(r.cacheHit).toBe(false)
      expect(log.warnings).toHaveLength(1)
      expect(log.warnings[0]).toMatch(reason)
      expect(storeFingerprint(runner)).toBe(before)
      // Paths already valid here are unaffected, signed or not.
      expect((await nixPortable(runner, ['nix-store', '--check-validity', figlet!])).code).toBe(0)
    }
  )

  it('refuses a signature over a different NAR hash (content and row changed to agree)', async () => {
    const cache = join((await world()).root, 'forged')
    cpSync(signedCache, cache, { recursive: true })
    const file = join(
      cache,
      readdirSync(cache).find(f => f.includes('-pack-'))!
    )
    const dir = `${file}.d`
    execFileSync('mkdir', [dir])
    execFileSync('tar', ['--use-compress-program', 'zstd -d -q', '-xf', file, '-C', dir])
    execFileSync('chmod', ['-R', 'u+w', dir])
    const name = readdirSync(join(dir, 'store')).find(n => n.endsWith('-hello'))!
    await chmod(join(dir, 'store', name, 'bin', 'hello'), 0o755)
    await writeFile(join(dir, 'store', name, 'bin', 'hello'), '#!/bin/sh\necho forged\n')
    const [d] = await narHashes([{ path: join(dir, 'store', name), weight: 0 }])
    if (!d || d instanceof Error) throw d ?? new Error('no digest')
    const db = new Database(join(dir, 'db.sqlite'))
    db.prepare('UPDATE ValidPaths SET hash = ?, narSize = ? WHERE path LIKE ?').run(
      `sha256:${d.hex}`,
      d.size,
      `%/${name}`
    )
    db.close()
    execFileSync('tar', ['--use-compress-program', 'zstd -q', '-cf', file, '-C', dir, '.'])

    const runner = await world()
    const log = new RecordingLogger()
    const r = await restoreSnapshot(
      await contextFor(runner, opts(cache, { 'trusted-public-keys': keyA.public }), log)
    )
    expect(r.pathsRestored).toBe(0)
    expect(log.warnings.join('\n')).toMatch(/-hello is not signed by a trusted key/)
    // Without trusted keys the NAR check alone accepts it: the row and files agree.
    const open = await restoreSnapshot(await contextFor(await world(), opts(cache)))
    expect(open.pathsRestored).toBeGreaterThan(0)
  })
})
