import { describe, expect, it } from 'vitest'
import { isStoreName, isStorePath } from '../../src/db/paths.js'

const HASH = '0123456789abcdfghijklmnpqrsvwxyz'

describe('isStorePath', () => {
  it.each([
    [`/nix/store/${HASH}-hello-2.12`, true],
    [`/nix/store/${HASH}-hello.drv`, true],
    [`/nix/store/${HASH}-python3.11-numpy-1.26_x+y?=z`, true],
    [`/nix/store/${HASH}-${'a'.repeat(211)}`, true],
    [`/nix/store/${HASH}-${'a'.repeat(212)}`, false],
    [`/nix/store/${HASH}-`, false],
    [`/nix/store/${HASH}-.hidden`, false],
    [`/nix/store/${HASH}-a/b`, false],
    [`/nix/store/${HASH}-a b`, false],
    [`/nix/store/${HASH.replace('z', 'e')}-x`, false], // e is not in Nix's base32
    [`/nix/store/${HASH.slice(1)}-x`, false],
    [`/gnu/store/${HASH}-x`, false],
    [`/nix/store/${HASH}-x\n`, false],
    [42, false],
    [null, false]
  ])('%s -> %s', (path, ok) => {
    expect(isStorePath(path)).toBe(ok)
  })
})

describe('isStoreName', () => {
  it.each([
    [`${HASH}-hello`, true],
    ['.links', false],
    [`${HASH}-hello.lock`, true],
    ['..', false],
    [`${HASH}`, false]
  ])('%s -> %s', (name, ok) => {
    expect(isStoreName(name)).toBe(ok)
  })
})
