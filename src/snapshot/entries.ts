// Small entries (snapshots, package index entries) on the backend: the newest
// under a prefix, read and narrowed; or written.
import { mkdir } from 'node:fs/promises'
import type { Backend } from '../backend/types.js'
import type { Phase } from '../log.js'
import { timed } from '../log.js'
import { removeTree } from '../store/fsops.js'
import type { CacheContext } from './context.js'
import { readManifest, writeManifest, type Manifest } from './manifest.js'

export interface Entry {
  key: string
  manifest: Manifest
}

/**
 * The newest entry under `prefix` (then under each of `fallbacks`); undefined
 * when there is none. An entry that arrives unreadable throws, with its key.
 */
export async function readEntry(
  ctx: CacheContext,
  prefix: string,
  fallbacks: readonly string[] = [],
  slot = 'entry'
): Promise<Entry | undefined> {
  return readEntryFrom(ctx.backend, prefix, fallbacks, slot)
}

/** readEntry, given only the backend (retention reads entries without a job). */
export async function readEntryFrom(
  backend: Backend,
  prefix: string,
  fallbacks: readonly string[],
  slot: string
): Promise<Entry | undefined> {
  const dir = backend.slotDir(slot)
  await removeTree(dir)
  const key = await backend.restore(dir, prefix, fallbacks)
  if (key === undefined) return undefined
  try {
    return { key, manifest: await readManifest(dir) }
  } catch (e) {
    throw new UnreadableEntryError(key, e)
  } finally {
    await removeTree(dir)
  }
}

/**
 * An index entry's staging slot, from its key or prefix: its own, so that lookups
 * and writes run side by side, and derived from the key alone, so that retention
 * can read an entry without knowing its attribute.
 */
export function indexSlot(keyOrPrefix: string): string {
  const m = /^nix-store-cache-v\d+-index-.*-([0-9a-f]{20})-/.exec(keyOrPrefix)
  if (!m) throw new Error(`internal: ${keyOrPrefix} is not a package index key`)
  return `index-${m[1]}`
}

export class UnreadableEntryError extends Error {
  override name = 'UnreadableEntryError'
  constructor(
    readonly key: string,
    cause: unknown
  ) {
    super(`${key}: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
}

/** Writes one entry; says so in the log. */
export async function writeEntry(
  ctx: CacheContext,
  phases: Phase[],
  what: string,
  key: string,
  manifest: Manifest,
  slot = 'entry'
): Promise<void> {
  const dir = ctx.backend.slotDir(slot)
  await removeTree(dir)
  await mkdir(dir, { recursive: true })
  await writeManifest(dir, manifest)
  const outcome = await timed(phases, `upload ${what}`, () => ctx.backend.save(dir, key))
  await removeTree(dir)
  ctx.log.info(
    outcome.result === 'saved'
      ? `Saved ${what} ${key}`
      : `${what[0]!.toUpperCase()}${what.slice(1)} ${key} is already in the cache.`
  )
}
