// Cache keys: nix-store-cache-v1-<os>-<arch>-<nix-portable>-<deps hash>-<snapshot hash>-<unique>.
// Restore looks up the deps prefix (newest snapshot for exactly these
// dependencies), then the user's restore keys, then the nix-portable prefix (the
// closest snapshot of any dependency set), so a job with new dependencies still
// starts from what exists and uploads only what it added.
import { createHash, randomBytes } from 'node:crypto'
import { InputError } from './errors.js'

export const KEY_VERSION = 'nix-store-cache-v1'
const MAX_KEY = 512

// A nixpkgs attribute path: identifiers (letters, digits, _, ', -; not starting
// with a digit, ' or -) joined by dots: `gcc`, `python3Packages.numpy`.
const ATTR_PATH = /^[A-Za-z_][A-Za-z0-9_'-]*(\.[A-Za-z_][A-Za-z0-9_'-]*)*$/

// Nix's keywords cannot name an attribute in `nix-shell -p` (it builds
// `with import <nixpkgs> {}; [ if ]`, which does not parse).
const NIX_KEYWORDS = new Set([
  'if',
  'then',
  'else',
  'assert',
  'with',
  'let',
  'in',
  'rec',
  'inherit',
  'or'
])

/** Splits `systemDependencies` on spaces, commas and newlines; dedupes and sorts. */
export function parseDependencies(input: string, name = 'systemDependencies'): string[] {
  const items = input.split(/[\s,]+/).filter(Boolean)
  if (items.length === 0) {
    throw new InputError(
      `Input \`${name}\` is empty: name at least one nixpkgs attribute, e.g. \`gcc ffmpeg\``
    )
  }
  for (const item of items) {
    const keyword = item.split('.').find(part => NIX_KEYWORDS.has(part))
    if (keyword !== undefined) {
      throw new InputError(
        `Input \`${name}\`: \`${item}\` is not a nixpkgs attribute name: \`${keyword}\` is a Nix keyword`
      )
    }
    if (!ATTR_PATH.test(item)) {
      throw new InputError(
        `Input \`${name}\`: \`${item}\` is not a nixpkgs attribute name ` +
          "(letters, digits, `_`, `-`, `'`, joined by dots, e.g. `python3Packages.numpy`)"
      )
    }
  }
  return [...new Set(items)].sort()
}

export interface KeyContext {
  os: string
  arch: string
  /** nix-portable's version, or a digest of a custom executable. */
  nixPortable: string
  dependencies: readonly string[]
  /** Extra key material from the user (a lock file's hash, …). */
  userKey: string
}

export function digest(text: string, length = 20): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length)
}

function clean(part: string): string {
  return part.replace(/[^A-Za-z0-9._]/g, '_')
}

/** `nix-store-cache-v1-<os>-<arch>-<nix-portable>-`: every snapshot made with this nix-portable. */
export function platformPrefix(ctx: KeyContext): string {
  return `${KEY_VERSION}-${clean(ctx.os)}-${clean(ctx.arch)}-${clean(ctx.nixPortable)}-`
}

/** Snapshots for exactly these dependencies and user key. */
export function depsPrefix(ctx: KeyContext): string {
  const material = `${ctx.dependencies.join(' ')}\n${ctx.userKey}`
  return `${platformPrefix(ctx)}${digest(material)}-`
}

/**
 * A snapshot's key: its dependency prefix, a digest of the packs it lists, and a
 * part of its own. Every save writes a new snapshot (they are small, and only
 * written when something changed), so one that arrived broken, which keys being
 * immutable could never replace, is simply superseded by the next, newer one.
 */
export function snapshotKey(
  ctx: KeyContext,
  packKeys: readonly string[],
  prefix = depsPrefix(ctx)
): string {
  return checkKey(`${prefix}${digest(packKeys.join('\n'))}-${uniquePart()}`)
}

/**
 * The dependency prefix of another set's snapshot key (one this job fell back
 * to), so that a save can publish that set's snapshot anew; undefined for a key
 * not made with this platform prefix.
 */
export function snapshotPrefixOf(ctx: KeyContext, key: string): string | undefined {
  const platform = platformPrefix(ctx)
  const m = /^([0-9a-f]{20})-/.exec(key.slice(platform.length))
  return key.startsWith(platform) && m ? `${platform}${m[1]}-` : undefined
}

/** The package index's name for what `nix-shell -p` itself needs (no attribute is named so). */
export const SHELL = ':shell'

/**
 * Package index entries for one attribute (or SHELL), with the same os, arch,
 * nix-portable and user key as snapshots. Not under platformPrefix, so the
 * closest-snapshot lookup never finds one.
 */
export function packagePrefix(ctx: KeyContext, attr: string): string {
  const platform = `${clean(ctx.os)}-${clean(ctx.arch)}-${clean(ctx.nixPortable)}`
  return `${KEY_VERSION}-index-${platform}-${digest(`${attr}\n${ctx.userKey}`)}-`
}

export function packageKey(ctx: KeyContext, attr: string): string {
  return checkKey(`${packagePrefix(ctx, attr)}${uniquePart()}`)
}

/**
 * A key for a pack whose own key holds a broken entry on a backend that cannot
 * overwrite (the Actions cache): the same paths under a key nobody has used.
 */
export function healedPackKey(key: string): string {
  return checkKey(`${key}-${uniquePart()}`)
}

function uniquePart(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
}

/** A pack's key comes from its sorted path list: the same paths saved twice are one entry. */
export function packKey(ctx: KeyContext, paths: readonly string[]): string {
  const sorted = [...paths].sort()
  return checkKey(
    `${KEY_VERSION}-${clean(ctx.os)}-${clean(ctx.arch)}-pack-${digest(sorted.join('\n'), 32)}`
  )
}

/** Where restore looks, in order. User prefixes come between ours. */
export function restorePrefixes(ctx: KeyContext, userRestoreKeys: readonly string[]): string[] {
  return [...new Set([depsPrefix(ctx), ...userRestoreKeys, platformPrefix(ctx)])]
}

/** Validates a user restore key (the same limits as the cache service's). */
export function parseRestoreKeys(input: string, name = 'restore-keys'): string[] {
  const keys = input
    .split('\n')
    .map(k => k.trim())
    .filter(Boolean)
  for (const k of keys) {
    if (k.includes(','))
      throw new InputError(`Input \`${name}\`: \`${k}\` contains a comma, which cache keys cannot`)
    if (k.length > MAX_KEY)
      throw new InputError(`Input \`${name}\`: a key is longer than ${MAX_KEY} characters`)
  }
  return keys
}

function checkKey(key: string): string {
  if (key.length > MAX_KEY || key.includes(',')) throw new Error(`internal: bad cache key ${key}`)
  return key
}
