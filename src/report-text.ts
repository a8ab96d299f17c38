import type { Phase } from './log.js'

/** `lookup 0.12 s, download 1.50 s` */
export function describePhases(phases: readonly Phase[]): string {
  if (phases.length === 0) return 'nothing to do'
  return phases.map(p => `${p.name} ${p.seconds.toFixed(2)} s`).join(', ')
}
