// saveSnapshot: what this dependency set needs (the closure of each
// attribute's output and of the shell's own inputs, asked of Nix) -> which
// restored packs to name, split or drop, and which new packs to write
// (packages/plan.ts) -> packs, the snapshot, the package index entries
// (packages/publish.ts). Nothing relevant new and a full hit -> no upload.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { NixDb } from '../db/index.js'
import { message } from '../errors.js'
import { SHELL, snapshotKey } from '../keys.js'
import { timed, type Phase } from '../log.js'
import { planPacks } from '../packages/plan.js'
import { publish, type Needs } from '../packages/publish.js'
import type { Roots } from '../packages/roots.js'
import { removeTree } from '../store/fsops.js'
import { withLock } from '../store/lock.js'
import { baseName } from '../store/layout.js'
import {
  lockDir,
  lockOptions,
  MAX_PACKS,
  onLocalDb,
  type CacheContext,
  type CacheState
} from './context.js'
import { writeEntry } from './entries.js'
import { MANIFEST_FORMAT, type PackRef } from './manifest.js'
import { altered } from './upload.js'

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
    // The index had every attribute: name its packs under this set's own key,
    // so the next job finds them with one lookup.
    const key = snapshotKey(
      ctx.keys,
      local.reusable.map(p => p.key)
    )
    const roots = [...new Set((state.entries ?? []).flatMap(e => e.manifest.roots ?? []))].sort()
    const m = {
      format: MANIFEST_FORMAT,
      packs: local.reusable,
      createdAt: new Date().toISOString()
    }
    await writeEntry(ctx, phases, 'snapshot', key, {
      ...m,
      dependencies: [...ctx.keys.dependencies],
      roots
    })
    return {
      outcome: `No new paths; saved snapshot ${key} for these dependencies.`,
      snapshotKey: key,
      pathsSaved: 0,
      bytesSaved: 0,
      phases
    }
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
  const newPaths = [...new Set([...needs.consumers.values()].flatMap(c => [...c]))].filter(
    p => !restoredPaths.has(p)
  )
  // Restored paths were checked against their rows by this job's restore.
  const bad = await onLocalDb(ctx, () => altered(ctx, phases, newPaths))
  const consumers = new Map(
    [...needs.consumers].map(([c, s]) => [c, new Set([...s].filter(p => !bad.has(p)))])
  )
  const sizes = await onLocalDb(ctx, () =>
    NixDb.with(lay.dbFile, { readonly: true }, db =>
      db.narSizes([
        ...new Set([...consumers.values()].flatMap(c => [...c]).concat([...restoredPaths]))
      ])
    )
  )
  const plan = planPacks({
    consumers,
    sizes,
    packs: local.reusable,
    minPack: MIN_PACK,
    maxPacks: MAX_PACKS
  })
  try {
    const done = await publish(ctx, phases, state, plan, { ...needs, consumers })
    const saved = done.uploaded.filter(u => u.saved)
    const closureBytes = roots
      ? sum([...new Set([...consumers.values()].flatMap(c => [...c]))].map(p => sizes.get(p) ?? 0))
      : undefined
    const archive = saved.filter(u => u.archiveBytes !== undefined)
    return {
      outcome: describe(done, saved.length, plan.splits.length),
      ...(done.snapshotKey ? { snapshotKey: done.snapshotKey } : {}),
      ...(done.uploaded.length ? { packKey: done.uploaded.at(-1)!.ref.key } : {}),
      pathsSaved: sum(saved.map(u => u.ref.paths.length)),
      bytesSaved: sum(saved.map(u => u.bytes)),
      ...(archive.length ? { archiveBytes: sum(archive.map(u => u.archiveBytes!)) } : {}),
      ...(closureBytes !== undefined ? { closureBytes } : {}),
      phases
    }
  } finally {
    await removeTree(ctx.backend.stageRoot)
  }
}

/** A consumer without an index entry of its own. */
const ANON = ':job'

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0)

function describe(
  done: Awaited<ReturnType<typeof publish>>,
  saved: number,
  splits: number
): string {
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

interface Local {
  /** Restored packs whose paths are all still valid. */
  reusable: PackRef[]
  /** Paths this job added that are not derivations or their sources and no restored pack holds. */
  built: string[]
}

/**
 * What this job added besides what evaluation writes (store derivations, and the
 * sources they refer to): when that is nothing and the restore was a full hit,
 * the save need not ask Nix anything.
 */
function readLocal(dbFile: string, state: CacheState): Local {
  return NixDb.with(dbFile, { readonly: true }, db => {
    const packs = state.manifest?.packs ?? []
    const valid = new Set(db.validAmong(packs.flatMap(p => p.paths)))
    const reusable = packs.filter(p => p.paths.every(x => valid.has(x)))
    const held = new Set(reusable.flatMap(p => p.paths))
    const fresh = db.pathsSince(state.watermark)
    const drvs = fresh.filter(p => p.endsWith('.drv'))
    const sources = new Set(db.rows(drvs).flatMap(r => r.references))
    const built = fresh.filter(p => !p.endsWith('.drv') && !sources.has(p) && !held.has(p))
    return { reusable, built }
  })
}

/**
 * Each consumer's closure: SHELL and every attribute whose output Nix named and
 * is valid here; without roots, one consumer, everything this job added and
 * every restored path. Paths without a folder are left out with their referrers.
 */
function needsOf(
  dbFile: string,
  storeDir: string,
  roots: Roots | undefined,
  local: Local,
  warn: (m: string) => void
): Needs {
  return NixDb.with(dbFile, { readonly: true }, db => {
    const named = new Map<string, string[]>()
    // Attributes the shell's inputs could not be told apart by (roots.ts) are
    // one consumer, ANON, without index entries.
    if (roots && roots.attrs.size === 0) named.set(ANON, roots.shell)
    else if (roots) {
      named.set(SHELL, roots.shell)
      for (const [attr, r] of roots.attrs) named.set(attr, r)
    }
    const consumers = new Map<string, Set<string>>()
    const rootsOf = new Map<string, string[]>()
    for (const [c, r] of named) {
      const valid = db.validAmong(r)
      if (valid.length === 0 && c !== SHELL) continue
      consumers.set(c, new Set(db.closure(valid)))
      if (c !== ANON) rootsOf.set(c, valid)
    }
    if (!roots) {
      const restored = local.reusable.flatMap(p => p.paths)
      consumers.set(ANON, new Set(db.closure([...local.built, ...restored])))
    }
    const missing = [...new Set([...consumers.values()].flatMap(c => [...c]))].filter(
      p => !existsSync(join(storeDir, baseName(p)))
    )
    if (missing.length > 0) {
      const drop = new Set(db.referrersClosure(missing))
      warn(
        `${missing.length} registered path(s) have no folder (e.g. ${missing[0]}); ` +
          `not saving them or the ${drop.size - missing.length} path(s) that refer to them.`
      )
      for (const [c, s] of consumers) consumers.set(c, new Set([...s].filter(p => !drop.has(p))))
    }
    return { consumers, roots: rootsOf }
  })
}
