// restoreSnapshot: newest snapshot -> skip packs already valid here -> fetch and
// check the rest -> move their paths into the store and merge their rows -> the
// watermark for save. A bad entry is a warning and a cache miss; the store and
// the database are left as they were.
import { message } from '../errors.js'
import { depsPrefix, restorePrefixes } from '../keys.js'
import { timed, type Phase } from '../log.js'
import { removeTree } from '../store/fsops.js'
import { withLock } from '../store/lock.js'
import { lockDir, lockOptions, onLocalDb, type CacheContext, type CacheState } from './context.js'
import { fetchPacks } from './fetch.js'
import { currentWatermark, placePack, prepareDb, repairLocal, validAmong } from './local-store.js'
import { readManifest, type Manifest } from './manifest.js'

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

export async function restoreSnapshot(ctx: CacheContext): Promise<RestoreReport> {
  const phases: Phase[] = []
  try {
    return await withLock(
      lockDir(ctx.layout),
      () => restoreInto(ctx, phases),
      lockOptions(ctx, 'restore')
    )
  } catch (e) {
    // Whatever went wrong, the job goes on uncached (a cache is never worth a failure).
    ctx.log.warning(`Restoring the cache failed: ${message(e)}. Going on without it.`)
    await removeTree(ctx.backend.stageRoot).catch(() => undefined)
    return missReport(ctx, phases)
  }
}

function missReport(ctx: CacheContext, phases: Phase[], broken: string[] = []): RestoreReport {
  let watermark = 0
  try {
    watermark = currentWatermark(ctx.layout)
  } catch {
    // A database we cannot read (say, a newer Nix's schema): save refuses it too.
  }
  return {
    state: { version: 1, watermark, cacheHit: false, ...(broken.length ? { broken } : {}) },
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
  await onLocalDb(ctx, () => repairLocal(ctx.layout, log))
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
    // A snapshot that arrived but is unusable: the next save must not reuse its key.
    return missReport(ctx, phases, matchedKey ? [matchedKey] : [])
  }
  const exact = matchedKey.startsWith(depsPrefix(ctx.keys))
  log.info(`Snapshot ${matchedKey} lists ${manifest.packs.length} pack(s)`)

  const valid = new Set(
    await onLocalDb(ctx, () =>
      validAmong(
        ctx.layout,
        manifest.packs.flatMap(p => p.paths)
      )
    )
  )
  const needed = manifest.packs.filter(p => p.paths.some(x => !valid.has(x)))
  const got = await timed(phases, 'download', () => fetchPacks(ctx, needed, valid))
  const { fetched } = got
  const left = new Set([...got.lost, ...got.broken, ...got.skipped])

  try {
    // Only when the database is missing or lacks tables: then the phase shows
    // the cost of nix-portable's first start in a new location.
    await onLocalDb(ctx, () =>
      prepareDb(ctx.layout, fetched, ca => timed(phases, 'nix init', () => ctx.initDb(ca)))
    )
  } catch (e) {
    log.warning(
      `The location's Nix database could not be prepared: ${message(e)}. The store was not touched; going on without the cache.`
    )
    await removeTree(backend.stageRoot)
    return missReport(ctx, phases, [...got.broken, ...got.lost])
  }
  let pathsRestored = 0
  let placed = 0
  await timed(phases, 'merge', async () => {
    for (const f of fetched) {
      pathsRestored += await onLocalDb(ctx, () => placePack(ctx.layout, f, log))
      placed++
    }
  }).catch((e: unknown) => {
    log.warning(
      `Restoring packs stopped: ${message(e)}. The packs restored before it are complete; going on.`
    )
  })
  await removeTree(backend.stageRoot)

  // A hit only when everything the snapshot holds is now here.
  const cacheHit = exact && left.size === 0 && placed === fetched.length
  const bytesRestored = fetched.slice(0, placed).reduce((n, f) => n + f.info.bytes, 0)
  phases.at(-1)!.paths = pathsRestored
  return {
    // Packs that are gone or broken are not passed on: save stores their paths again.
    state: {
      version: 1,
      watermark: await onLocalDb(ctx, () => currentWatermark(ctx.layout)),
      matchedKey,
      cacheHit,
      manifest: { ...manifest, packs: manifest.packs.filter(p => !left.has(p.key)) },
      restoredPacks: manifest.packs.length,
      // Gone packs too: @actions/cache reports an entry it cannot extract as a miss.
      broken: [...got.broken, ...got.lost]
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
