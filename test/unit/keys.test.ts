import { describe, expect, it } from 'vitest'
import { InputError } from '../../src/errors.js'
import {
  depsPrefix,
  packKey,
  parseDependencies,
  parseRestoreKeys,
  platformPrefix,
  restorePrefixes,
  snapshotKey,
  type KeyContext
} from '../../src/keys.js'

describe('parseDependencies', () => {
  it.each([
    ['gcc ffmpeg', ['ffmpeg', 'gcc']],
    ['ffmpeg,gcc', ['ffmpeg', 'gcc']],
    ['gcc\nffmpeg\n', ['ffmpeg', 'gcc']],
    ['  gcc ,  gcc\tffmpeg ', ['ffmpeg', 'gcc']],
    ['python3Packages.numpy', ['python3Packages.numpy']],
    ["haskellPackages.ghc_9-6'", ["haskellPackages.ghc_9-6'"]]
  ])('%j -> %j', (input, deps) => {
    expect(parseDependencies(input)).toEqual(deps)
  })

  it.each([
    ['', /Input `systemDependencies` is empty/],
    [' , \n', /Input `systemDependencies` is empty/],
    ['gcc;rm -rf /', /`gcc;rm` is not a nixpkgs attribute name/],
    ['$(x)', /`\$\(x\)` is not a nixpkgs attribute name/],
    ['a..b', /`a\.\.b` is not/],
    ['.gcc', /`\.gcc` is not/],
    ['9lives', /`9lives` is not/],
    ['gcc/bin', /`gcc\/bin` is not/],
    ['gcc if', /`if` is not a nixpkgs attribute name: `if` is a Nix keyword/],
    ['let', /`let` is a Nix keyword/],
    ['python3Packages.with', /`python3Packages\.with` is not .*`with` is a Nix keyword/],
    ['inherit rec or', /is a Nix keyword/]
  ])('refuses %j', (input, message) => {
    expect(() => parseDependencies(input)).toThrow(InputError)
    expect(() => parseDependencies(input)).toThrow(message)
  })
})

describe('keys', () => {
  const ctx: KeyContext = {
    os: 'linux',
    arch: 'x64',
    nixPortable: 'v012',
    dependencies: ['ffmpeg', 'gcc'],
    userKey: ''
  }

  it('do not depend on the order the dependencies were given in', () => {
    const again = { ...ctx, dependencies: parseDependencies('gcc ffmpeg gcc') }
    expect(depsPrefix(again)).toBe(depsPrefix(ctx))
  })

  it('change with the dependencies, the user key, the platform and nix-portable', () => {
    const variants: KeyContext[] = [
      { ...ctx, dependencies: ['gcc'] },
      { ...ctx, userKey: 'lock-abc' },
      { ...ctx, arch: 'arm64' },
      { ...ctx, nixPortable: 'v011' }
    ]
    for (const v of variants) expect(depsPrefix(v)).not.toBe(depsPrefix(ctx))
  })

  it('nest: snapshot key < deps prefix < platform prefix', () => {
    const snap = snapshotKey(ctx, ['p1', 'p2'])
    expect(snap.startsWith(depsPrefix(ctx))).toBe(true)
    expect(depsPrefix(ctx).startsWith(platformPrefix(ctx))).toBe(true)
    expect(platformPrefix(ctx)).toBe('nix-store-cache-v1-linux-x64-v012-')
  })

  it('look up our deps first, then the user prefixes, then any deps', () => {
    expect(restorePrefixes(ctx, ['custom-'])).toEqual([
      depsPrefix(ctx),
      'custom-',
      platformPrefix(ctx)
    ])
  })

  it('name a pack by its sorted paths only', () => {
    const a = packKey(ctx, ['/nix/store/b', '/nix/store/a'])
    expect(packKey({ ...ctx, dependencies: ['x'] }, ['/nix/store/a', '/nix/store/b'])).toBe(a)
    expect(packKey(ctx, ['/nix/store/a'])).not.toBe(a)
  })

  it('stay under 512 characters and without commas, whatever the input', () => {
    const big = {
      ...ctx,
      dependencies: Array.from({ length: 500 }, (_, i) => `pkg${i}`),
      userKey: 'x,'.repeat(400),
      nixPortable: 'a,b'.repeat(100)
    }
    for (const k of [snapshotKey(big, ['a']), packKey(big, ['a'])]) {
      expect(k.length).toBeLessThan(512)
      expect(k).not.toContain(',')
    }
  })
})

describe('parseRestoreKeys', () => {
  it('takes one prefix a line', () => {
    expect(parseRestoreKeys('a-\n  b- \n\n')).toEqual(['a-', 'b-'])
  })
  it.each([
    ['a,b', /`a,b` contains a comma/],
    ['x'.repeat(513), /longer than 512/]
  ])('refuses %j', (input, message) => {
    expect(() => parseRestoreKeys(input)).toThrow(message)
  })
})
