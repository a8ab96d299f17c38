// Outputs, log lines and the job summary: the one place besides the entry
// points that talks to @actions/core.
import * as core from '@actions/core'
import type { Logger, Phase } from './log.js'
import { formatBytes } from './report-text.js'
import type { RestoreReport } from './snapshot/restore.js'
import type { SaveReport } from './snapshot/save.js'

export const coreLogger: Logger = {
  info: m => core.info(m),
  warning: m => core.warning(m)
}

export function restoreOutputs(r: RestoreReport, primaryKey: string): void {
  // cache-hit: everything this set needs came whole from the cache (its own
  // snapshot, or the package index for every attribute).
  core.setOutput('cache-hit', r.cacheHit ? 'true' : 'false')
  core.setOutput('restore-source', r.source)
  core.setOutput('primary-key', primaryKey)
  core.setOutput('restored-key', r.matchedKey ?? '')
  core.setOutput('paths-restored', String(r.pathsRestored))
}

export function saveOutputs(s: SaveReport): void {
  core.setOutput('paths-saved', String(s.pathsSaved))
  core.setOutput('bytes-saved', String(s.bytesSaved))
}

export interface SummaryRow {
  phase: string
  seconds: number
  paths?: number
  bytes?: number
  result: string
}

export function restoreRows(r: RestoreReport): SummaryRow[] {
  const what = r.cacheHit ? 'hit' : r.source === 'none' ? 'miss' : 'partial hit'
  const from = r.matchedKey ? `: <code>${r.matchedKey}</code>` : ''
  const result = `${what} (${r.source})${from}`
  return phaseRows('restore', r.phases, result, {
    paths: r.pathsRestored,
    bytes: r.bytesRestored
  })
}

export function saveRows(s: SaveReport): SummaryRow[] {
  return phaseRows('save', s.phases, s.outcome, { paths: s.pathsSaved, bytes: s.bytesSaved })
}

function phaseRows(
  step: string,
  phases: readonly Phase[],
  result: string,
  totals: { paths: number; bytes: number }
): SummaryRow[] {
  const rows: SummaryRow[] = phases.map(p => ({
    phase: `${step}: ${p.name}`,
    seconds: p.seconds,
    ...(p.paths !== undefined ? { paths: p.paths } : {}),
    ...(p.bytes !== undefined ? { bytes: p.bytes } : {}),
    result: ''
  }))
  rows.push({
    phase: `<b>${step}, total</b>`,
    seconds: phases.reduce((n, p) => n + p.seconds, 0),
    paths: totals.paths,
    bytes: totals.bytes,
    result
  })
  return rows
}

/** One table in the job summary; a summary that cannot be written is a warning. */
export async function writeSummary(
  title: string,
  rows: readonly SummaryRow[],
  keys: string[] = []
): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  try {
    const header = ['Phase', 'Seconds', 'Paths', 'Bytes', 'Result'].map(data => ({
      data,
      header: true
    }))
    const body = rows.map(r => [
      r.phase,
      r.seconds.toFixed(2),
      r.paths === undefined ? '–' : String(r.paths),
      r.bytes === undefined ? '–' : formatBytes(r.bytes),
      r.result || '–'
    ])
    let summary = core.summary.addHeading(title, 3).addTable([header, ...body])
    if (keys.length > 0) summary = summary.addList(keys)
    await summary.write()
  } catch (e) {
    core.warning(`Could not write the job summary: ${e instanceof Error ? e.message : String(e)}`)
  }
}
