// The action's post step (and the `save` sub-action): save only what is new.
// In the post step every failure is a warning: the job's work is done.
import * as core from '@actions/core'
import { readConfig } from './inputs.js'
import { InputError, message } from '../errors.js'
import { cacheContext } from '../pipeline.js'
import { coreLogger, saveOutputs, saveRows, writeSummary } from '../report.js'
import { formatBytes, saveLine } from '../report-text.js'
import { parseState } from '../snapshot/context.js'
import { saveSnapshot } from '../snapshot/save.js'
import { loadState } from './state.js'

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
    await writeSummary('nix-store-cache: save', saveRows(s), [
      ...(s.snapshotKey ? [`snapshot: <code>${s.snapshotKey}</code>`] : []),
      ...(s.closureBytes !== undefined
        ? [`the closure of these dependencies: ${formatBytes(s.closureBytes)}`]
        : [])
    ])
  } catch (e) {
    if (mode === 'save' && e instanceof InputError) core.setFailed(e.message)
    else core.warning(`Saving the cache failed: ${message(e)}`)
  }
}
