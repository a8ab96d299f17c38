// restoreSnapshot: newest snapshot -> skip packs already valid here -> fetch and
// check the rest -> move their paths into the store and merge their rows -> the
// watermark for save. A bad entry is a warning and a cache miss; the store and
// the database are left as they were.
import { existsSync } from 'node:fs'
import { message } from '../errors.js'
import { NixDb } from '../db/index.js'
import { timed, type Phase } from '../log.js'
import { removeTree } from '../store/fsops.js'
import { withLock } from '../store/lock.js'
import { lockDir, lockOptions, onLocalDb, type CacheContext, type CacheState } from './context.js'
import { fetchPacks } from './fetch.js'
import { currentWatermark, placePack, prepareDb, repairLocal, validAmong } from './local-store.js'
import type { Entry } from './entries.js'
import { describeSource, findPacks, type RestoreSource } from './lookup.js'
import { MANIFEST_FORMAT } from './manifest.js'
import { groupsOf, markUsed } from '../retention/marks.js'

export interface RestoreReport {
  state: CacheState
  /** The snapshot used (exact or closest), if one was. */
  matchedKey?: string
  source: RestoreSource
  cacheHit: boolean
  /** NAR bytes of what this set needs, when the entries say (an exact snapshot or the index). */
  closureBytes?: number
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
    state: {
      version: 1,
      watermark,
      cacheHit: false,
      source: 'none',
      ...(broken.length ? { broken } : {})
    },
    source: 'none',
    cacheHit: false,
    packsFetched: 0,
    packsSkipped: 0,
    pathsRestored: 0,
    bytesRestored: 0,
    phases
  }
}

async function restoreInto(ctx: CacheContext, phases: Phase[]): Promise<RestoreReport> {
  const { backend } = ctx
  await backend.sweep()
  await removeTree(backend.stageRoot)
  await onLocalDb(ctx, () => repairLocal(ctx.layout, ctx.log))
  // A location without a database gets one from its own Nix while the cache is
  // looked up and the packs download, so that nix-portable's first start there
  // hides behind the transfer (after a miss, nix-shell would make it next).
  // Packs with content-addressed outputs migrate it after the download.
  const early = existsSync(ctx.layout.dbFile)
    ? undefined
    : onLocalDb(ctx, () => timed(phases, 'nix init', () => ctx.initDb(false))).then(
        () => undefined,
        (e: unknown) => e
      )
  try {
    return await restoreFound(ctx, phases, early)
  } finally {
    await early // the location's Nix never outlives the restore
  }
}

/**
 * The lookup onwards. `early` is the running `nix-store --init` of a location
 * that had no database (settling to its error, if any); nothing is valid there.
 */
async function restoreFound(
  ctx: CacheContext,
  phases: Phase[],
  early: Promise<unknown> | undefined
): Promise<RestoreReport> {
  const { backend, log } = ctx
  const found = await timed(phases, 'lookup', () => findPacks(ctx))
  if (found.source === 'none') {
    log.info(
      `Nothing in the cache for ${ctx.keys.dependencies.join(' ')}: no snapshot, no package index entry.`
    )
    await early // before the watermark is read; a failure is nix-shell's to report
    return missReport(ctx, phases, found.broken)
  }
  const matchedKey = found.snapshot?.key
  log.info(`Restoring from ${describeSource(found)}: ${found.packs.length} pack(s)`)

  const valid = new Set(
    early
      ? []
      : await onLocalDb(ctx, () =>
          validAmong(
            ctx.layout,
            found.packs.flatMap(p => p.paths)
          )
        )
  )
  const needed = found.packs.filter(p => p.paths.some(x => !valid.has(x)))
  const used = [...(found.snapshot ? [found.snapshot] : []), ...found.index.values()]
  const marking = markUsed(backend, log, groupsOf(used.map(e => e.key)))
  const got = await timed(phases, 'download', () => fetchPacks(ctx, needed, valid))
  await marking
  const { fetched } = got
  const left = new Set([...got.lost, ...got.broken, ...got.skipped])
  const broken = [...found.broken, ...got.broken, ...got.lost]

  try {
    const failed = await early
    if (failed !== undefined) throw failed
    // Only when the database is still missing or lacks tables: then the phase
    // shows the cost of nix-portable's first start in a new location.
    await onLocalDb(ctx, () =>
      prepareDb(ctx.layout, fetched, ca => timed(phases, 'nix init', () => ctx.initDb(ca)))
    )
  } catch (e) {
    log.warning(
      `The location's Nix database could not be prepared: ${message(e)}. The store was not touched; going on without the cache.`
    )
    await removeTree(backend.stageRoot)
    return missReport(ctx, phases, broken)
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

  // A hit only when everything this set needs came, whole, from entries made for it.
  const whole = left.size === 0 && placed === fetched.length
  const cacheHit = whole && (found.source === 'snapshot' || found.source === 'packages')
  const bytesRestored = fetched.slice(0, placed).reduce((n, f) => n + f.info.bytes, 0)
  phases.at(-1)!.paths = pathsRestored
  const entries = [...(found.snapshot ? [found.snapshot] : []), ...found.index.values()]
  const closureBytes = cacheHit ? await onLocalDb(ctx, () => closureSize(ctx, entries)) : undefined
  return {
    // Packs that are gone or broken are not passed on: save stores their paths again.
    state: {
      version: 1,
      watermark: await onLocalDb(ctx, () => currentWatermark(ctx.layout)),
      ...(matchedKey ? { matchedKey } : {}),
      cacheHit,
      manifest: {
        format: MANIFEST_FORMAT,
        createdAt: '',
        packs: found.packs.filter(p => !left.has(p.key))
      },
      restoredPacks: found.packs.length,
      // Gone packs too: @actions/cache reports an entry it cannot extract as a miss.
      broken,
      source: found.source,
      entries
    },
    ...(matchedKey ? { matchedKey } : {}),
    source: found.source,
    cacheHit,
    packsFetched: fetched.length,
    packsSkipped: found.packs.length - needed.length,
    pathsRestored,
    bytesRestored,
    ...(closureBytes !== undefined ? { closureBytes } : {}),
    phases
  }
}

/** NAR bytes of the closure of the roots the entries name (when they all name theirs). */
function closureSize(ctx: CacheContext, entries: readonly Entry[]): number | undefined {
  if (entries.some(e => e.manifest.roots === undefined)) return undefined
  const roots = entries.flatMap(e => e.manifest.roots ?? [])
  return NixDb.with(ctx.layout.dbFile, { readonly: true }, db => {
    let n = 0
    for (const size of db.narSizes(db.closure(roots)).values()) n += size
    return n
  })
}
