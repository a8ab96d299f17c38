// NAR hashing against nix: every path nix registered must hash to the narHash
// and narSize nix wrote, and our base32 must be nix's.
import { afterAll, describe, expect, it } from 'vitest'
import { appendFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { NixDb } from '../../src/db/index.js'
import { narHashes } from '../../src/trust/nar-pool.js'
import { fromNix32, parseNarHash, toNix32 } from '../../src/trust/nar.js'
import { build } from '../rig/store.js'
import { dbFile, makeWorld, nixOk, removeWorld, storeDir, type World } from '../rig/world.js'

const worlds: World[] = []
afterAll(async () => {
  for (const w of worlds) await removeWorld(w)
})

interface Row {
  path: string
  hash: string
  narSize: number
}

function rows(w: World): Row[] {
  const db = NixDb.open(dbFile(w), { readonly: true })
  try {
    return db.sql.prepare('SELECT path, hash, narSize FROM ValidPaths ORDER BY path').all() as Row[]
  } finally {
    db.close()
  }
}

const folder = (w: World, path: string): string =>
  join(storeDir(w), path.slice('/nix/store/'.length))

describe('narHashes', () => {
  it('gives the hash and size nix recorded for every path: files, executables, links, a link loop, .drv files', async () => {
    const w = await makeWorld({ ca: true })
    worlds.push(w)
    await build(w, ['hello', 'cowsay', 'multi.out', 'multi.dev', 'bigbin', 'linky', 'caHello'])
    const all = rows(w)
    expect(all.length).toBeGreaterThan(15)
    const digests = await narHashes(all.map(r => ({ path: folder(w, r.path), weight: r.narSize })))
    for (const [i, r] of all.entries()) {
      const d = digests[i]!
      if (d instanceof Error) throw d
      expect(`sha256:${d.hex}`, r.path).toBe(r.hash)
      expect(d.size, r.path).toBe(r.narSize)
    }
  })

  it('sees one changed byte, a changed mode and a missing folder', async () => {
    const w = await makeWorld()
    worlds.push(w)
    const [hello, greetingOut] = await build(w, ['hello', 'greeting'])
    const byPath = new Map(rows(w).map(r => [r.path, r]))
    const greetingFile = join(folder(w, greetingOut!), 'share', 'greeting')
    chmodSync(join(folder(w, greetingOut!), 'share'), 0o755)
    chmodSync(greetingFile, 0o644)
    appendFileSync(greetingFile, '!')
    chmodSync(join(folder(w, hello!), 'bin', 'hello'), 0o444)
    const [g, h, gone] = await narHashes([
      { path: folder(w, greetingOut!), weight: 0 },
      { path: folder(w, hello!), weight: 0 },
      { path: join(storeDir(w), 'nothing-here'), weight: 0 }
    ])
    expect(g).not.toBeInstanceOf(Error)
    expect(`sha256:${(g as { hex: string }).hex}`).not.toBe(byPath.get(greetingOut!)!.hash)
    expect(`sha256:${(h as { hex: string }).hex}`).not.toBe(byPath.get(hello!)!.hash)
    expect(gone).toBeInstanceOf(Error)
  })
})

describe("nix's base32", () => {
  it('matches nix-hash --to-base32 and round-trips', async () => {
    const w = await makeWorld()
    worlds.push(w)
    await build(w, ['hello'])
    const hexes = rows(w).map(r => r.hash.slice('sha256:'.length))
    const theirs = (await nixOk(w, ['nix-hash', '--type', 'sha256', '--to-base32', ...hexes]))
      .trim()
      .split('\n')
    for (const [i, hex] of hexes.entries()) {
      const bytes = Buffer.from(hex, 'hex')
      expect(toNix32(bytes)).toBe(theirs[i])
      expect(fromNix32(theirs[i]!)?.equals(bytes)).toBe(true)
      expect(parseNarHash(`sha256:${theirs[i]!}`)?.equals(bytes)).toBe(true)
    }
    expect(parseNarHash('md5:abc')).toBeUndefined()
    expect(fromNix32('e'.repeat(52))).toBeUndefined()
  })
})
