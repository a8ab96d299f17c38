// The action's post step (and the `save` sub-action): save only what is new.
// In the post step every failure is a warning: the job's work is done.
import * as core from '@actions/core'
import { readConfig } from './inputs.js'
import { InputError, message } from '../errors.js'
import { cacheContext } from '../pipeline.js'
import { coreLogger, saveOutputs, saveRows, writeSummary } from '../report.js'
import { formatBytes, saveLine } from '../report-text.js'
import { parseState, type CacheContext } from '../snapshot/context.js'
import type { Config } from '../config.js'
import { depsPrefix, packagePrefix, SHELL } from '../keys.js'
import { prune, pruneLine } from '../retention/prune.js'
import { saveSnapshot } from '../snapshot/save.js'
import { loadState } from './state.js'

/**
 * After the save: prune the cache (local, s3: input `prune`), or on GitHub,
 * with a token, purge this set's older snapshots and the packs nothing names.
 * Returns the summary's line; a failure is a warning.
 */
async function retain(config: Readonly<Config>, ctx: CacheContext): Promise<string | undefined> {
  const r = config.retention
  const github = config.backend === 'github'
  if (github && !config.token) {
    return r.prune
      ? 'retention: no `token`, so nothing was deleted and GitHub evicts by least recent use; ' +
          'give `token: ${{ github.token }}` with `permissions: actions: write` to delete ' +
          "this set's snapshots older than the newest `keep-snapshots` and the packs they alone name"
      : undefined
  }
  if (!r.prune && !github) return undefined
  try {
    // This set's snapshots, and the index entries of its attributes and the shell.
    const own = new Set([
      depsPrefix(ctx.keys),
      ...[SHELL, ...ctx.keys.dependencies].map(a => packagePrefix(ctx.keys, a))
    ])
    const report = await core.group(github ? 'Purge stale cache entries' : 'Prune the cache', () =>
      prune(
        ctx.backend,
        coreLogger,
        github
          ? {
              keepSnapshots: r.keepSnapshots,
              graceMs: r.graceMs,
              dryRun: r.dryRun,
              maxAgeMs: Infinity,
              inScope: (g: string) => own.has(g)
            }
          : r
      )
    )
    return pruneLine(report)
  } catch (e) {
    core.warning(`Pruning the cache failed: ${message(e)}`)
    return undefined
  }
}

export async function postRun(mode: 'post' | 'save'): Promise<void> {
  try {
    const config = readConfig()
    if (!config.save) {
      core.info('`save` is false: not saving.')
      return
    }
    const state = await loadState(mode)
    if (!state && mode === 'post') {
      core.info('The main step did not restore anything: nothing to save.')
      return
    }
    if (!state) core.info('No state from a restore step: saving every registered path.')
    const ctx = await cacheContext(config, coreLogger)
    const s = await core.group('Save the Nix store', async () => {
      const report = await saveSnapshot(ctx, state ?? parseState({}))
      core.info(saveLine(report))
      return report
    })
    saveOutputs(s)
    const pruned = await retain(config, ctx)
    await writeSummary('nix-store-cache: save', saveRows(s), [
      ...(s.snapshotKey ? [`snapshot: <code>${s.snapshotKey}</code>`] : []),
      ...(s.closureBytes !== undefined
        ? [`the closure of these dependencies: ${formatBytes(s.closureBytes)}`]
        : []),
      ...(pruned ? [pruned] : [])
    ])
  } catch (e) {
    if (mode === 'save' && e instanceof InputError) core.setFailed(e.message)
    else core.warning(`Saving the cache failed: ${message(e)}`)
  }
}
