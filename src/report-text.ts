import type { Phase } from './log.js'
import type { RestoreReport } from './snapshot/restore.js'

/** `lookup 0.12 s, download 1.50 s` */
export function describePhases(phases: readonly Phase[]): string {
  if (phases.length === 0) return 'nothing to do'
  return phases.map(p => `${p.name} ${p.seconds.toFixed(2)} s`).join(', ')
}

/** 1536 -> `1.5 KiB` */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`
}

/** One line for the log: what the restore found and did, with its times. */
export function restoreLine(r: Omit<RestoreReport, 'state'>): string {
  const what = r.cacheHit ? 'hit' : r.source === 'none' ? 'miss' : 'partial'
  const from = r.matchedKey ? ` ${r.matchedKey}` : ''
  return (
    `restore: ${what} from ${r.source}${from}; ${r.packsFetched} pack(s) fetched, ${r.packsSkipped} already present, ` +
    `${r.pathsRestored} paths, ${formatBytes(r.bytesRestored)}${beside(r.closureBytes)} (${describePhases(r.phases)})`
  )
}

/** ` of 12.0 MiB the closure needs`, when known. */
export function beside(closureBytes: number | undefined): string {
  return closureBytes === undefined ? '' : ` of ${formatBytes(closureBytes)} the closure needs`
}

/** One line for the log: what the save did, with its times. */
export function saveLine(s: { outcome: string; phases: readonly Phase[] }): string {
  return `save: ${s.outcome} (${describePhases(s.phases)})`
}
