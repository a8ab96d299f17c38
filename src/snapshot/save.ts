// saveSnapshot: what this dependency set needs (the closure of each
// attribute's output and of the shell's own inputs, asked of Nix) -> which
// restored packs to name, split or drop, and which new packs to write
// (packages/plan.ts) -> packs, the snapshot, the package index entries
// (packages/publish.ts). Nothing relevant new and a full hit -> no upload.
import { existsSync } from 'node:fs'
import { message } from '../errors.js'
import { snapshotKey } from '../keys.js'
import { timed, type Phase } from '../log.js'
import { needsOf, readLocal, union, without } from '../packages/needs.js'
import { planPacks } from '../packages/plan.js'
import { entryManifest, publish, type Published } from '../packages/publish.js'
import type { Roots } from '../packages/roots.js'
import { removeTree } from '../store/fsops.js'
import { withLock } from '../store/lock.js'
import {
  lockDir,
  lockOptions,
  MAX_PACKS,
  onLocalDb,
  shapeOf,
  type CacheContext,
  type CacheState
} from './context.js'
import { writeEntry } from './entries.js'
import { markUsed } from '../retention/marks.js'
import type { PackRef } from './manifest.js'
import { altered } from './upload.js'
import { MIN_PART } from '../transfer/pool.js'

/**
 * A group of new paths smaller than this is packed with the other small ones,
 * and a restored pack is split only when the part a set does not need is at
 * least this big: below it, a pack of its own costs a restore more (a lookup,
 * an archive, a merge) than its bytes do. Measured by `npm run bench:matrix`
 * on the local backend: one more pack costs 18 ms, the time of 3.2 MiB at
 * that restore's 180 MiB/s.
 */
export const MIN_PACK = 3 * 1024 * 1024

export interface SaveReport {
  /** What happened, in a sentence. */
  outcome: string
  snapshotKey?: string
  /** The last pack written. */
  packKey?: string
  pathsSaved: number
  /** Bytes of the store trees in the new packs. */
  bytesSaved: number
  /** Compressed bytes uploaded, where the backend knows them. */
  archiveBytes?: number
  /** NAR bytes of the closure this set needs, when Nix said what it needs. */
  closureBytes?: number
  phases: Phase[]
}

export async function saveSnapshot(ctx: CacheContext, state: CacheState): Promise<SaveReport> {
  return withLock(lockDir(ctx.layout), () => saveLocked(ctx, state), lockOptions(ctx, 'save'))
}

async function saveLocked(ctx: CacheContext, state: CacheState): Promise<SaveReport> {
  const phases: Phase[] = []
  const { layout: lay, log } = ctx
  const nothing = (outcome: string): SaveReport => ({
    outcome,
    pathsSaved: 0,
    bytesSaved: 0,
    phases
  })
  if (!existsSync(lay.dbFile)) return nothing(`No Nix database at ${lay.dbFile}: nothing to save.`)

  const local = await onLocalDb(ctx, () => readLocal(lay.dbFile, state))
  const whole = local.reusable.length === (state.restoredPacks ?? 0)
  if (state.cacheHit && whole && local.built.length === 0) {
    if (state.source !== 'packages') return nothing('Nothing new in the store: no upload.')
    return snapshotOfIndex(ctx, phases, state, local.reusable)
  }

  let roots: Roots | undefined
  try {
    roots = await timed(phases, 'roots', () => ctx.roots(state.nixPortable))
  } catch (e) {
    log.warning(
      `Could not ask Nix what nix-shell -p ${ctx.keys.dependencies.join(' ')} needs (${message(e)}): ` +
        'saving the paths this job added, without package index entries.'
    )
  }
  const needs = await onLocalDb(ctx, () =>
    needsOf(lay.dbFile, lay.storeDir, roots, local, m => log.warning(m))
  )
  const restoredPaths = new Set(local.reusable.flatMap(p => p.paths))
  const newPaths = union(needs.consumers).filter(p => !restoredPaths.has(p))
  // Restored paths were checked against their rows by this job's restore.
  const bad = await onLocalDb(ctx, () => altered(ctx, phases, newPaths))
  const consumers = without(needs.consumers, bad)
  const { sizes } = needs
  const plan = planPacks({
    consumers,
    sizes,
    packs: local.reusable,
    minPack: MIN_PACK,
    maxPacks: MAX_PACKS,
    maxPack: shapeOf(ctx).packBytes,
    parts: shapeOf(ctx).parts,
    minPart: MIN_PART
  })
  try {
    const done = await publish(ctx, phases, state, plan, { roots: needs.roots, consumers })
    const closure = roots ? sum(union(consumers).map(p => sizes.get(p) ?? 0)) : undefined
    return report(done, plan.splits.length, closure, phases)
  } finally {
    await removeTree(ctx.backend.stageRoot)
  }
}

function report(
  done: Published,
  splits: number,
  closureBytes: number | undefined,
  phases: Phase[]
): SaveReport {
  const saved = done.uploaded.filter(u => u.saved)
  const archive = saved.filter(u => u.archiveBytes !== undefined)
  return {
    outcome: describe(done, saved.length, splits),
    ...(done.snapshotKey ? { snapshotKey: done.snapshotKey } : {}),
    ...(done.uploaded.length ? { packKey: done.uploaded.at(-1)!.ref.key } : {}),
    pathsSaved: sum(saved.map(u => u.ref.paths.length)),
    bytesSaved: sum(saved.map(u => u.bytes)),
    ...(archive.length ? { archiveBytes: sum(archive.map(u => u.archiveBytes!)) } : {}),
    ...(closureBytes !== undefined ? { closureBytes } : {}),
    phases
  }
}

/**
 * The index had every attribute and nothing is new: name its packs under this
 * set's own key, so that the next job finds them with one lookup.
 */
async function snapshotOfIndex(
  ctx: CacheContext,
  phases: Phase[],
  state: CacheState,
  packs: PackRef[]
): Promise<SaveReport> {
  const key = snapshotKey(
    ctx.keys,
    packs.map(p => p.key)
  )
  const roots = new Set((state.entries ?? []).flatMap(e => e.manifest.roots ?? []))
  await markUsed(
    ctx.backend,
    ctx.log,
    packs.map(p => p.key)
  )
  await writeEntry(
    ctx,
    phases,
    'snapshot',
    key,
    entryManifest(packs, [...ctx.keys.dependencies], [...roots])
  )
  return {
    outcome: `No new paths; saved snapshot ${key} for these dependencies.`,
    snapshotKey: key,
    pathsSaved: 0,
    bytesSaved: 0,
    phases
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0)

function describe(done: Published, saved: number, splits: number): string {
  if (!done.snapshotKey && done.indexEntries === 0 && saved === 0) {
    return 'Nothing new in the store: no upload.'
  }
  const parts = [
    saved > 0 ? `saved ${saved} new pack(s)` : 'no new pack',
    splits > 0 ? `split ${splits} restored pack(s) along what this set needs` : '',
    done.snapshotKey ? `snapshot ${done.snapshotKey}` : '',
    done.indexEntries > 0
      ? `${done.indexEntries} package index entr${done.indexEntries === 1 ? 'y' : 'ies'}`
      : '',
    done.republished > 0
      ? `${done.republished} other entr${done.republished === 1 ? 'y' : 'ies'} now naming the split packs`
      : ''
  ]
  const text = parts.filter(Boolean).join('; ')
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`
}
