// What a prune deletes: pure, from the cache's listing, the last-use marks and
// what each kept entry names. Entries (snapshots, package index entries) are
// judged per group, whole sets go when unused or over the budget, and a pack
// goes only when no kept entry names it. Nothing younger than the grace period
// is ever chosen.
import type { Stored } from '../backend/types.js'
import type { Retention } from '../config.js'
import { classify, type Kind } from './classify.js'

export type Rules = Pick<Retention, 'keepSnapshots' | 'maxAgeMs' | 'maxSizeBytes' | 'graceMs'>

export interface Item extends Stored {
  kind: Kind
  group: string
}

export interface Doomed {
  key: string
  kind: Kind
  bytes: number
  reason: string
}

/** Our entries in a listing; keys we do not know are left out (never deleted). */
export function items(listing: readonly Stored[]): Item[] {
  return listing.flatMap(s => {
    const c = classify(s.key)
    return c ? [{ ...s, ...c }] : []
  })
}

export interface EntryChoice {
  keep: Item[]
  drop: Doomed[]
}

/**
 * Snapshots and index entries: a group unused (neither restored nor saved) for
 * maxAge goes whole; else all but its newest keepSnapshots go. `inScope` limits
 * which groups are judged at all (GitHub's purge: this job's set only).
 */
export function chooseEntries(
  all: readonly Item[],
  used: ReadonlyMap<string, number>,
  rules: Rules,
  now: number,
  inScope: (group: string) => boolean = () => true,
  contents: ReadonlyMap<string, string> = new Map()
): EntryChoice {
  const keep: Item[] = []
  const drop: Doomed[] = []
  for (const [group, entries] of groups(all)) {
    const last = lastUse(entries, used.get(group))
    const stale = now - last > rules.maxAgeMs
    // The newest N distinct ones: an entry holding the same paths as a newer one
    // of its set (republished after a split) adds nothing to go back to.
    const seen = new Set<string>()
    let distinct = 0
    entries.forEach(e => {
      const content = contents.get(e.key)
      const duplicate = content !== undefined && seen.has(content)
      if (content !== undefined) seen.add(content)
      if (!duplicate) distinct++
      const reason = !inScope(group)
        ? undefined
        : stale
          ? `its set unused for ${ago(now - last)}`
          : duplicate
            ? 'holds the same paths as a newer entry of its set'
            : distinct > rules.keepSnapshots
              ? `older than the newest ${rules.keepSnapshots} of its set`
              : undefined
      if (reason && !young(born(e), rules, now)) drop.push(doomed(e, reason))
      else keep.push(e)
    })
  }
  return { keep, drop }
}

export interface PackChoice {
  /** Entries of whole sets dropped to meet the budget, least recently used first. */
  drop: Doomed[]
  packs: Doomed[]
  keptBytes: number
  /** The budget could not be met without deleting what the grace period protects. */
  overBudget: boolean
}

/**
 * After the kept entries' names are known: sets go whole, least recently used
 * first, while the cache is over the budget; then every pack that no kept entry
 * names and no recent use protects.
 */
export function choosePacks(
  kept: readonly Item[],
  names: ReadonlyMap<string, readonly string[]>,
  packs: readonly Item[],
  used: ReadonlyMap<string, number>,
  rules: Rules,
  now: number
): PackChoice {
  let live = [...kept]
  const drop: Doomed[] = []
  // A pack is young when saved, reused by a save (a mark) or, on GitHub, looked up lately.
  const packYoung = (p: Item): boolean =>
    young(Math.max(p.modified, used.get(p.key) ?? 0), rules, now)
  const settle = (): { doomed: Item[]; bytes: number } => {
    const named = new Set(live.flatMap(e => names.get(e.key) ?? []))
    const doomedPacks = packs.filter(p => !named.has(p.key) && !packYoung(p))
    const gone = new Set(doomedPacks.map(p => p.key))
    const bytes = [...live, ...packs.filter(p => !gone.has(p.key))].reduce((n, i) => n + i.bytes, 0)
    return { doomed: doomedPacks, bytes }
  }
  let state = settle()
  const budget = rules.maxSizeBytes
  if (budget !== undefined && state.bytes > budget) {
    const order = [...groups(live)]
      .map(([group, entries]) => ({ group, last: lastUse(entries, used.get(group)) }))
      .sort((a, b) => a.last - b.last || a.group.localeCompare(b.group))
    for (const { group } of order) {
      if (state.bytes <= budget) break
      const victims = live.filter(e => e.group === group && !young(born(e), rules, now))
      if (victims.length === 0) continue
      const gone = new Set(victims.map(v => v.key))
      live = live.filter(e => !gone.has(e.key))
      drop.push(...victims.map(v => doomed(v, 'least recently used set, over the budget')))
      state = settle()
    }
  }
  return {
    drop,
    packs: state.doomed.map(p => doomed(p, 'named by no kept snapshot or index entry')),
    keptBytes: state.bytes,
    overBudget: budget !== undefined && state.bytes > budget
  }
}

/** Entries by group, each newest first. */
function groups(all: readonly Item[]): Map<string, Item[]> {
  const by = new Map<string, Item[]>()
  for (const e of all) {
    if (e.kind === 'pack') continue
    by.set(e.group, [...(by.get(e.group) ?? []), e])
  }
  for (const list of by.values())
    list.sort((a, b) => born(b) - born(a) || b.key.localeCompare(a.key))
  return by
}

/** The later of the group's newest save and its last restore. */
function lastUse(entries: readonly Item[], mark: number | undefined): number {
  return Math.max(mark ?? 0, ...entries.map(e => e.modified))
}

/** When an entry was saved (reads do not move it). */
function born(e: Stored): number {
  return e.created ?? e.modified
}

function young(time: number, rules: Rules, now: number): boolean {
  return now - time < rules.graceMs
}

function doomed(e: Item, reason: string): Doomed {
  return { key: e.key, kind: e.kind, bytes: e.bytes, reason }
}

/** `3d 4h`, `25m`, `40s`. */
function ago(ms: number): string {
  const s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86_400)
  const h = Math.floor((s % 86_400) / 3600)
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`
  if (h > 0) return `${h}h ${Math.floor((s % 3600) / 60)}m`
  return s >= 60 ? `${Math.floor(s / 60)}m` : `${s}s`
}
