// Small entries (snapshots, package index entries) on the backend: the newest
// under a prefix, read and narrowed; or written.
import { mkdir } from 'node:fs/promises'
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
  fallbacks: readonly string[] = []
): Promise<Entry | undefined> {
  const { backend } = ctx
  await removeTree(backend.entryDir)
  const key = await backend.restore(backend.entryDir, prefix, fallbacks)
  if (key === undefined) return undefined
  try {
    return { key, manifest: await readManifest(backend.entryDir) }
  } catch (e) {
    throw new UnreadableEntryError(key, e)
  } finally {
    await removeTree(backend.entryDir)
  }
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
  manifest: Manifest
): Promise<void> {
  const { backend } = ctx
  await removeTree(backend.entryDir)
  await mkdir(backend.entryDir, { recursive: true })
  await writeManifest(backend.entryDir, manifest)
  const outcome = await timed(phases, `upload ${what}`, () => backend.save(backend.entryDir, key))
  await removeTree(backend.entryDir)
  ctx.log.info(
    outcome.result === 'saved'
      ? `Saved ${what} ${key}`
      : `${what[0]!.toUpperCase()}${what.slice(1)} ${key} is already in the cache.`
  )
}
