// restoreSnapshot: newest snapshot -> skip packs already valid here -> fetch and
// check the rest -> move their paths into the store and merge their rows -> the
// watermark for save. A bad entry is a warning and a cache miss; the store and
// the database are left as they were.
import { existsSync, readdirSync } from 'node:fs'
import { mkdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { isStoreName, merge, NixDb, repair } from '../db/index.js'
import { message } from '../errors.js'
import { depsPrefix, restorePrefixes } from '../keys.js'
import { timed, type Logger, type Phase } from '../log.js'
import { moveEntry, removeTree } from '../store/fsops.js'
import { baseName, type Layout } from '../store/layout.js'
import { BadPackError, checkPack, storeOf, type PackInfo } from '../store/pack-dir.js'
import type { CacheContext, CacheState } from './context.js'
import { readManifest, type Manifest, type PackRef } from './manifest.js'

export interface RestoreReport {
  state: CacheState
  matchedKey?: string
  cacheHit: boolean
  packsFetched: number
  packsSkipped: number
  pathsRestored: number
  bytesRestored: number
  phases: Phase[]
}

interface Fetched {
  ref: PackRef
  dir: string
  info: PackInfo
}

export async function restoreSnapshot(ctx: CacheContext): Promise<RestoreReport> {
  const phases: Phase[] = []
  try {
    return await restoreInto(ctx, phases)
  } catch (e) {
    // Whatever went wrong, the job goes on uncached (a cache is never worth a failure).
    ctx.log.warning(`Restoring the cache failed: ${message(e)}. Going on without it.`)
    await removeTree(ctx.backend.stageRoot).catch(() => undefined)
    return missReport(ctx, phases)
  }
}

function missReport(ctx: CacheContext, phases: Phase[]): RestoreReport {
  return {
    state: { version: 1, watermark: currentWatermark(ctx.layout), cacheHit: false },
    cacheHit: false,
    packsFetched: 0,
    packsSkipped: 0,
    pathsRestored: 0,
    bytesRestored: 0,
    phases
  }
}

async function restoreInto(ctx: CacheContext, phases: Phase[]): Promise<RestoreReport> {
  const { backend, log } = ctx
  const prefixes = restorePrefixes(ctx.keys, ctx.userRestoreKeys)
  const miss = (): RestoreReport => missReport(ctx, phases)

  await backend.sweep()
  await removeTree(backend.stageRoot)
  repairLocal(ctx.layout, log)
  let matchedKey: string | undefined
  let manifest: Manifest
  try {
    matchedKey = await timed(phases, 'lookup', () =>
      backend.restore(backend.entryDir, prefixes[0]!, prefixes.slice(1))
    )
    if (matchedKey === undefined) {
      log.info(`No snapshot found for ${prefixes.join(' or ')}`)
      return miss()
    }
    manifest = await readManifest(backend.entryDir)
  } catch (e) {
    log.warning(
      `Cache snapshot ${matchedKey ?? prefixes[0]} could not be restored: ${message(e)}. Going on without it.`
    )
    await removeTree(backend.stageRoot)
    return miss()
  }
  const cacheHit = matchedKey.startsWith(depsPrefix(ctx.keys))
  log.info(`Snapshot ${matchedKey} lists ${manifest.packs.length} pack(s)`)

  const valid = new Set(
    validAmong(
      ctx.layout,
      manifest.packs.flatMap(p => p.paths)
    )
  )
  const needed = manifest.packs.filter(p => p.paths.some(x => !valid.has(x)))
  let fetched: Fetched[]
  let lostPacks: Set<string>
  try {
    ;({ fetched, lostPacks } = await timed(phases, 'download', () =>
      fetchPacks(ctx, needed, valid)
    ))
  } catch (e) {
    log.warning(
      `Cache entry ${(e as { key?: string }).key ?? matchedKey} is unusable: ${message(e)}. The store was not touched; going on without the cache.`
    )
    await removeTree(backend.stageRoot)
    return miss()
  }

  let pathsRestored = 0
  await timed(phases, 'merge', async () => {
    for (const f of fetched) pathsRestored += await placePack(ctx.layout, f, log)
  }).catch(async (e: unknown) => {
    log.warning(
      `Restoring packs stopped: ${message(e)}. The packs restored before it are complete; going on.`
    )
  })
  await removeTree(backend.stageRoot)

  const bytesRestored = fetched.reduce((n, f) => n + f.info.bytes, 0)
  phases.at(-1)!.paths = pathsRestored
  return {
    // Packs the cache no longer has are not passed on: save stores their paths again.
    state: {
      version: 1,
      watermark: currentWatermark(ctx.layout),
      matchedKey,
      cacheHit,
      manifest: { ...manifest, packs: manifest.packs.filter(p => !lostPacks.has(p.key)) },
      restoredPacks: manifest.packs.length
    },
    matchedKey,
    cacheHit,
    packsFetched: fetched.length,
    packsSkipped: manifest.packs.length - needed.length,
    pathsRestored,
    bytesRestored,
    phases
  }
}

/**
 * Downloads and checks every needed pack before anything touches the store. A
 * pack the cache no longer has (evicted) is skipped with the packs that need its
 * paths: Nix builds those again and the next save stores them. Anything wrong
 * with a pack that is there makes the whole restore a miss.
 */
async function fetchPacks(
  ctx: CacheContext,
  needed: PackRef[],
  valid: Set<string>
): Promise<{ fetched: Fetched[]; lostPacks: Set<string> }> {
  const out: Fetched[] = []
  const available = new Set(valid)
  const lost = new Set<string>()
  const lostPacks = new Set<string>()
  for (const [i, ref] of needed.entries()) {
    try {
      await removeTree(ctx.backend.entryDir)
      const got = await ctx.backend.restore(ctx.backend.entryDir, ref.key, [])
      if (got !== ref.key) {
        ctx.log.warning(
          `Pack ${ref.key} is no longer in the cache (evicted?): its ${ref.paths.length} paths ` +
            'will be built again and saved.'
        )
        for (const p of ref.paths) lost.add(p)
        lostPacks.add(ref.key)
        continue
      }
      const dir = join(ctx.backend.stageRoot, `pack-${i}`)
      await rename(ctx.backend.entryDir, dir)
      const { info, external } = await checkPack(dir)
      if (info.paths.join('\n') !== ref.paths.join('\n')) {
        throw new BadPackError('its pack.json does not list the paths the snapshot says it holds')
      }
      const unknown = external.filter(p => !available.has(p))
      const bad = unknown.filter(p => !lost.has(p))
      if (bad.length > 0) {
        throw new BadPackError(
          `it refers to paths that are neither in it nor valid: ${bad.slice(0, 3).join(', ')}`
        )
      }
      if (unknown.length > 0) {
        ctx.log.warning(
          `Pack ${ref.key} needs paths of a pack that is gone: skipping its ${ref.paths.length} paths.`
        )
        for (const p of ref.paths) lost.add(p)
        lostPacks.add(ref.key)
        await removeTree(dir)
        continue
      }
      for (const p of info.paths) available.add(p)
      out.push({ ref, dir, info })
    } catch (e) {
      throw Object.assign(new Error(message(e)), { key: ref.key })
    }
  }
  return { fetched: out, lostPacks }
}

/**
 * Moves a checked pack's paths into the store, then merges its rows in one
 * transaction, so rows never exist without their folders; a failure moves the
 * folders back. A path this store already has (a row) keeps its own files. A
 * folder without a row (a leftover, or nix-portable's unregistered bootstrap) is
 * replaced: its files are unknown, and registering them would trust them.
 */
async function placePack(lay: Layout, f: Fetched, log: Logger): Promise<number> {
  await mkdir(lay.storeDir, { recursive: true })
  const db = existsSync(lay.dbFile)
    ? NixDb.open(lay.dbFile)
    : NixDb.create(lay.dbFile, { schemaFile: true })
  const displacedDir = join(f.dir, 'displaced')
  const moved: string[] = []
  const displaced: string[] = []
  try {
    const valid = new Set(db.validAmong(f.info.paths))
    const names = f.info.paths.filter(p => !valid.has(p)).map(baseName)
    for (const n of names) {
      const target = join(lay.storeDir, n)
      if (existsSync(target)) {
        await mkdir(displacedDir, { recursive: true })
        await moveEntry(target, join(displacedDir, n))
        displaced.push(n)
      }
      await moveEntry(join(storeOf(f.dir), n), target)
      moved.push(n)
    }
    const merged = merge(db, join(f.dir, 'db.sqlite'))
    for (const what of merged.skipped) log.info(`Pack ${f.ref.key}: not merged: ${what}`)
    return merged.pathsAdded
  } catch (e) {
    for (const n of moved.reverse()) await moveEntry(join(lay.storeDir, n), join(storeOf(f.dir), n))
    for (const n of displaced) await moveEntry(join(displacedDir, n), join(lay.storeDir, n))
    throw e
  } finally {
    db.close()
  }
}

/**
 * A row whose folder is gone makes Nix fail later, and `nix-store --verify`
 * cannot fix it: drop such rows with their referrers before restoring, so the
 * paths come back from the cache (or get rebuilt) instead. Not when the store
 * folder is missing or empty: then the layout, not the store, is wrong.
 */
function repairLocal(lay: Layout, log: Logger): void {
  if (!existsSync(lay.dbFile) || !existsSync(lay.storeDir)) return
  if (readdirSync(lay.storeDir).filter(isStoreName).length === 0) return
  const db = NixDb.open(lay.dbFile)
  try {
    const dropped = repair(db, lay.storeDir)
    if (dropped.length > 0) {
      log.warning(
        `${dropped.length} registered path(s) had no folder or referred to one that had none ` +
          `(e.g. ${dropped[0]}): dropped their rows so that Nix does not trust them.`
      )
    }
  } finally {
    db.close()
  }
}

function currentWatermark(lay: Layout): number {
  if (!existsSync(lay.dbFile)) return 0
  const db = NixDb.open(lay.dbFile, { readonly: true })
  try {
    return db.watermark()
  } finally {
    db.close()
  }
}

function validAmong(lay: Layout, paths: string[]): string[] {
  if (!existsSync(lay.dbFile)) return []
  const db = NixDb.open(lay.dbFile, { readonly: true })
  try {
    return db.validAmong(paths)
  } finally {
    db.close()
  }
}
