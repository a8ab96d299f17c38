// A prune: list the cache, read what every entry names, judge the entries,
// delete the dropped snapshots and index entries, then look again (a save on
// another runner may have landed meanwhile) and delete the packs nothing names.
// The write order of saves (packs, then names) and this delete order (names,
// then packs), with the grace period, keep every name's target there for any
// reader; no cross-machine lock.
import type { Backend } from '../backend/types.js'
import { message } from '../errors.js'
import type { Logger } from '../log.js'
import { digest } from '../keys.js'
import { formatBytes } from '../report-text.js'
import { removeTree } from '../store/fsops.js'
import { indexSlot, readEntryFrom, UnreadableEntryError } from '../snapshot/entries.js'
import { mapLimit, WIDTH } from '../transfer/pool.js'
import { chooseEntries, choosePacks, items, type Doomed, type Item, type Rules } from './plan.js'

export interface PruneOptions extends Rules {
  dryRun: boolean
  /** Only these groups' entries are judged (GitHub: this job's set); others are kept. */
  inScope?: (group: string) => boolean
  now?: () => number
}

export interface PruneReport {
  deleted: Doomed[]
  bytesFreed: number
  /** What the cache holds after the prune (of our entries). */
  bytesKept: number
  entriesKept: number
  dryRun: boolean
  overBudget: boolean
}

export async function prune(backend: Backend, log: Logger, o: PruneOptions): Promise<PruneReport> {
  try {
    return await pruneNow(backend, log, o)
  } finally {
    await removeTree(backend.stageRoot).catch(() => undefined)
  }
}

async function pruneNow(backend: Backend, log: Logger, o: PruneOptions): Promise<PruneReport> {
  const now = o.now ?? Date.now
  const t0 = now()
  const [listing, marks] = await Promise.all([backend.list(), backend.marks()])
  const used = new Map(marks.map(m => [m.key, m.modified]))
  const all = items(listing)
  const inScope = o.inScope ?? (() => true)
  // Every entry is read: what it names, and whether it holds the same paths as a newer one.
  const names = await readNames(
    backend,
    all.filter(i => i.kind !== 'pack')
  )
  const entries = chooseEntries(all, used, o, t0, inScope, names.contents)
  const packs = all.filter(i => i.kind === 'pack')
  const choice = choosePacks(entries.keep, names.names, packs, used, o, t0)
  // Entries unreadable as stored name nothing: they go with the dropped ones
  // (in scope, and past the grace period, like any other).
  const budgeted = new Set(choice.drop.map(d => d.key))
  const broken = entries.keep.filter(
    e =>
      names.broken.has(e.key) &&
      !budgeted.has(e.key) &&
      inScope(e.group) &&
      t0 - (e.created ?? e.modified) >= o.graceMs
  )
  const dropped = [
    ...entries.drop,
    ...choice.drop,
    ...broken.map(e => ({ key: e.key, kind: e.kind, bytes: e.bytes, reason: 'unreadable' }))
  ]
  const deleted: Doomed[] = [...dropped]
  if (!o.dryRun) {
    // Names first: a reader never finds one whose packs are gone.
    await mapLimit(dropped, WIDTH, d => backend.remove(d.key))
  }
  // Look again: a save that landed meanwhile names packs, or marked one it reuses.
  const doomedPacks = o.dryRun
    ? choice.packs
    : await recheck(backend, choice.packs, listing, o, now)
  if (!o.dryRun) await mapLimit(doomedPacks, WIDTH, d => backend.remove(d.key))
  deleted.push(...doomedPacks)
  if (!o.dryRun) await dropMarks(backend, marks, all, deleted, o, t0, log)

  const bytesFreed = deleted.reduce((n, d) => n + d.bytes, 0)
  for (const d of deleted)
    log.info(
      `${o.dryRun ? 'Would delete' : 'Deleted'} ${d.kind} ${d.key} (${formatBytes(d.bytes)}): ${d.reason}`
    )
  const gone = new Set(deleted.map(d => d.key))
  const left = all.filter(i => !gone.has(i.key))
  const report: PruneReport = {
    deleted,
    bytesFreed,
    bytesKept: left.reduce((n, i) => n + i.bytes, 0),
    entriesKept: left.length,
    dryRun: o.dryRun,
    overBudget: choice.overBudget
  }
  log.info(pruneLine(report))
  if (report.overBudget)
    log.warning(
      `The cache is still over \`max-size\` (${formatBytes(report.bytesKept)} kept): what is left is younger than \`grace\` or named by kept snapshots.`
    )
  return report
}

export function pruneLine(r: PruneReport): string {
  return (
    `prune${r.dryRun ? ' (dry run)' : ''}: ${r.dryRun ? 'would delete' : 'deleted'} ` +
    `${r.deleted.length} entries, ${formatBytes(r.bytesFreed)}; ` +
    `${r.entriesKept} entries, ${formatBytes(r.bytesKept)} kept`
  )
}

interface Names {
  names: Map<string, readonly string[]>
  /** A digest of the store paths each entry's packs hold. */
  contents: Map<string, string>
  /** Entries that arrived unreadable (malformed), which name nothing. */
  broken: Set<string>
}

/**
 * What each entry names. On github an entry's slot keys its version, so reads
 * through one slot take turns; elsewhere any slot will do.
 */
async function readNames(backend: Backend, entries: readonly Item[]): Promise<Names> {
  const names = new Map<string, readonly string[]>()
  const contents = new Map<string, string>()
  const broken = new Set<string>()
  const bySlot = new Map<string, Item[]>()
  entries.forEach((e, i) => {
    const slot =
      backend.name !== 'github'
        ? `read-${i % WIDTH}`
        : e.kind === 'index'
          ? indexSlot(e.key)
          : 'entry'
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), e])
  })
  await mapLimit([...bySlot], WIDTH, async ([slot, list]) => {
    for (const e of list) {
      try {
        const found = await readEntryFrom(backend, e.key, [], slot)
        // Gone since the listing (another prune): it names nothing now.
        const packs = found?.manifest.packs ?? []
        names.set(
          e.key,
          packs.map(p => p.key)
        )
        if (found)
          contents.set(
            e.key,
            digest(
              packs
                .flatMap(p => p.paths)
                .sort()
                .join('\n'),
              32
            )
          )
      } catch (err) {
        if (!(err instanceof UnreadableEntryError)) throw err
        broken.add(e.key)
      }
    }
  })
  return { names, contents, broken }
}

/**
 * The packs still to delete after looking again: not named by an entry that
 * appeared since the first listing, and not marked or saved since.
 */
async function recheck(
  backend: Backend,
  packs: readonly Doomed[],
  before: readonly { key: string }[],
  o: PruneOptions,
  now: () => number
): Promise<Doomed[]> {
  if (packs.length === 0) return []
  const [listing, marks] = await Promise.all([backend.list(), backend.marks()])
  const seen = new Set(before.map(s => s.key))
  const fresh = items(listing).filter(i => i.kind !== 'pack' && !seen.has(i.key))
  const named = new Set([...(await readNames(backend, fresh)).names.values()].flat())
  const t = now()
  const recent = new Set(
    [...listing, ...marks].filter(s => t - s.modified < o.graceMs).map(s => s.key)
  )
  return packs.filter(p => !named.has(p.key) && !recent.has(p.key))
}

/** Marks of names that no longer exist, once past the grace period. */
async function dropMarks(
  backend: Backend,
  marks: readonly { key: string; modified: number }[],
  all: readonly Item[],
  deleted: readonly Doomed[],
  o: PruneOptions,
  t0: number,
  log: Logger
): Promise<void> {
  const gone = new Set(deleted.map(d => d.key))
  const alive = new Set(all.filter(i => !gone.has(i.key)).flatMap(i => [i.key, i.group]))
  const stale = marks.filter(m => !alive.has(m.key) && t0 - m.modified >= o.graceMs)
  await mapLimit(stale, WIDTH, m => backend.removeMark(m.key)).catch((e: unknown) =>
    log.info(`Could not remove old last-use marks: ${message(e)}`)
  )
}
