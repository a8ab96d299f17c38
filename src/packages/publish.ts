// Writing a save's entries, in the order that keeps every name's target there
// before the name: packs, then the names (the snapshot and the package index
// entries, side by side), then the other sets' entries that named a pack this
// save split.
import {
  KEY_VERSION,
  packageKey,
  packagePrefix,
  packKey,
  SHELL,
  snapshotKey,
  snapshotPrefixOf
} from '../keys.js'
import type { Phase } from '../log.js'
import { shapeOf, type CacheContext, type CacheState } from '../snapshot/context.js'
import { indexSlot, readEntry, writeEntry, type Entry } from '../snapshot/entries.js'
import { MANIFEST_FORMAT, type Manifest, type PackRef } from '../snapshot/manifest.js'
import { uploadPack, type Uploaded } from '../snapshot/upload.js'
import { compressThreads, mapLimit } from '../transfer/pool.js'
import { packsFor, type PackPlan } from './plan.js'
import { markUsed } from '../retention/marks.js'

export interface Needs {
  /** Consumer -> its closure; SHELL and attribute names, or one anonymous consumer. */
  consumers: ReadonlyMap<string, ReadonlySet<string>>
  /** Consumer -> its roots; only consumers that get an index entry. */
  roots: ReadonlyMap<string, readonly string[]>
}

export interface Published {
  uploaded: Uploaded[]
  snapshotKey?: string
  indexEntries: number
  republished: number
}

export function isIndexKey(key: string): boolean {
  return key.startsWith(`${KEY_VERSION}-index-`)
}

/** The attribute an index entry is for (SHELL for the shell's own). */
function attrOf(e: Entry): string {
  return e.manifest.dependencies?.[0] ?? SHELL
}

const keysOf = (packs: readonly PackRef[]): string => packs.map(p => p.key).join('\n')

/** An entry's manifest, made now. */
export function entryManifest(
  packs: PackRef[],
  dependencies: string[],
  roots?: readonly string[]
): Manifest {
  return {
    format: MANIFEST_FORMAT,
    packs,
    createdAt: new Date().toISOString(),
    dependencies,
    ...(roots ? { roots: [...roots].sort() } : {})
  }
}

export async function publish(
  ctx: CacheContext,
  phases: Phase[],
  state: CacheState,
  plan: PackPlan,
  needs: Needs
): Promise<Published> {
  const broken = new Set(state.broken ?? [])
  const uploaded: Uploaded[] = []
  const up = async (paths: readonly string[], threads: number): Promise<PackRef> => {
    const u = await uploadPack(ctx, phases, paths, broken, threads)
    uploaded.push(u)
    return u.ref
  }
  // Every pack uploads side by side, the backend's width at a time; names come after.
  const groups = [...plan.splits.flatMap(s => s.parts), ...plan.fresh]
  // First, every pack the names will name is marked used, before any is found
  // to exist already: a prune that looks after this keeps them through its
  // grace period, and one that deleted a pack before makes this save upload it.
  await markUsed(ctx.backend, ctx.log, [
    ...plan.keep.map(p => p.key),
    ...groups.map(g => packKey(ctx.keys, g))
  ])
  const { width, saveWidth = width } = shapeOf(ctx)
  // Each zstd gets its share of the cores: a lone pack all of them.
  const threads = compressThreads(Math.min(saveWidth, groups.length))
  const refs = await mapLimit(groups, saveWidth, g => up(g, threads))
  const replaced = new Map<string, PackRef[]>()
  const named: PackRef[] = [...plan.keep]
  plan.splits.forEach((s, i) => {
    const parts = [refs[2 * i]!, refs[2 * i + 1]!]
    replaced.set(s.from.key, parts)
    named.push(parts[0]!)
  })
  named.push(...refs.slice(2 * plan.splits.length))
  const written = new Set(uploaded.filter(u => u.saved).map(u => u.ref.key))

  const deps = [...ctx.keys.dependencies]
  const allRoots = needs.roots.size > 0 ? [...new Set([...needs.roots.values()].flat())] : undefined
  const exact = state.source === 'snapshot' ? state.entries?.[0] : undefined
  const snapshotChanged =
    !exact || keysOf(exact.manifest.packs) !== keysOf(named) || !exact.manifest.roots
  const key = snapshotChanged
    ? snapshotKey(
        ctx.keys,
        named.map(p => p.key)
      )
    : undefined

  const prior = new Map(
    (state.entries ?? []).filter(e => isIndexKey(e.key)).map(e => [attrOf(e), e])
  )
  // After an exact snapshot, the index was written by that snapshot's save:
  // an entry changes only when it needs a pack this save wrote.
  const changed = [...needs.roots].flatMap(([attr, roots]) => {
    const packs = packsFor(named, needs.consumers.get(attr)!)
    const before = prior.get(attr)
    if (before && keysOf(before.manifest.packs) === keysOf(packs)) return []
    if (!before && exact && !packs.some(p => written.has(p.key))) return []
    return [{ attr, entry: entryManifest(packs, attr === SHELL ? [] : [attr], roots) }]
  })
  // The names, side by side: every pack they name is already there.
  const names = [
    ...(key
      ? [{ what: 'snapshot', key, m: entryManifest(named, deps, allRoots), slot: 'entry' }]
      : []),
    ...changed.map(c => {
      const k = packageKey(ctx.keys, c.attr)
      return { what: 'index entry', key: k, m: c.entry, slot: indexSlot(k) }
    })
  ]
  await mapLimit(names, width, n => writeEntry(ctx, phases, n.what, n.key, n.m, n.slot))
  const indexEntries = changed.length
  const republished =
    replaced.size > 0
      ? await republish(ctx, phases, state, replaced, new Set(needs.roots.keys()))
      : 0
  return { uploaded, ...(key ? { snapshotKey: key } : {}), indexEntries, republished }
}

/**
 * Entries of other sets that named a pack this save split now name its parts
 * (the same paths), so the old pack is no longer live: the snapshot this job
 * fell back to, and the index entries of that snapshot's attributes.
 */
async function republish(
  ctx: CacheContext,
  phases: Phase[],
  state: CacheState,
  replaced: ReadonlyMap<string, PackRef[]>,
  own: ReadonlySet<string>
): Promise<number> {
  // An exact snapshot is this set's own: the new one supersedes it.
  if (state.source === 'snapshot') return 0
  const entries = (state.entries ?? []).filter(e => !(isIndexKey(e.key) && own.has(attrOf(e))))
  const seen = new Set(entries.filter(e => isIndexKey(e.key)).map(attrOf))
  for (const e of entries.filter(x => !isIndexKey(x.key))) {
    for (const attr of [SHELL, ...(e.manifest.dependencies ?? [])]) {
      if (own.has(attr) || seen.has(attr)) continue
      seen.add(attr)
      const prefix = packagePrefix(ctx.keys, attr)
      const found = await readEntry(ctx, prefix, [], indexSlot(prefix)).catch(() => undefined)
      if (found) entries.push(found)
    }
  }
  let n = 0
  for (const e of entries) {
    if (!e.manifest.packs.some(p => replaced.has(p.key))) continue
    const packs = e.manifest.packs.flatMap(p => replaced.get(p.key) ?? [p])
    const m = { ...e.manifest, packs, createdAt: new Date().toISOString() }
    const index = isIndexKey(e.key)
    const prefix = index ? undefined : snapshotPrefixOf(ctx.keys, e.key)
    if (!index && !prefix) continue // made with another platform prefix: not ours to replace
    const key = index
      ? packageKey(ctx.keys, attrOf(e))
      : snapshotKey(
          ctx.keys,
          packs.map(p => p.key),
          prefix
        )
    await writeEntry(
      ctx,
      phases,
      index ? 'index entry' : 'snapshot',
      key,
      m,
      index ? indexSlot(key) : 'entry'
    )
    n++
  }
  return n
}
