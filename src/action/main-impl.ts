// The action's main step (and the `restore` sub-action): inputs -> nix-portable
// -> restore -> `run` inside nix-shell. Bad input fails before anything is
// touched; a cache problem is a warning and the job goes on.
import * as core from '@actions/core'
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Config } from '../config.js'
import { readConfig } from './inputs.js'
import { InputError, message } from '../errors.js'
import { which } from '../which.js'
import { depsPrefix } from '../keys.js'
import { installNixPortable, nixArch } from '../nix-portable/install.js'
import { runNixShell } from '../nix-portable/run.js'
import { chooseRuntime } from '../nix-portable/runtime.js'
import { realHost } from '../nix-portable/userns.js'
import { cacheContext } from '../pipeline.js'
import { coreLogger, restoreOutputs, restoreRows, writeSummary } from '../report.js'
import { beside, formatBytes, restoreLine } from '../report-text.js'
import { restoreSnapshot } from '../snapshot/restore.js'
import { keepState } from './state.js'

export async function mainRun(mode: 'main' | 'restore'): Promise<void> {
  try {
    const config = readConfig()
    nixArch() // an unsupported runner fails here, before anything is touched
    if (config.nixPortable && !existsSync(config.nixPortable)) {
      throw new InputError(
        `Input \`nix-portable\`: ${config.nixPortable} does not exist; leave it empty to download nix-portable`
      )
    }
    const np = await core.group('Set up nix-portable', () => setUp(config))

    const ctx = await cacheContext(config, coreLogger, np.path, np.npRuntime ?? 'auto')
    const primaryKey = depsPrefix(ctx.keys)
    const r = await core.group('Restore the Nix store', async () => {
      const report = await restoreSnapshot(ctx)
      core.info(restoreLine(report))
      return report
    })
    restoreOutputs(r, primaryKey)
    await keepState(
      { ...r.state, nixPortable: { path: np.path, runtime: np.npRuntime ?? 'auto' } },
      mode
    )
    await writeSummary('nix-store-cache: restore', restoreRows(r), [
      `primary key: <code>${primaryKey}</code>`,
      `restored from: ${r.source}`,
      `bytes restored: ${formatBytes(r.bytesRestored)}${beside(r.closureBytes)}`
    ])

    if (config.failOnCacheMiss && r.source === 'none') {
      core.setFailed(`No cache entry matches ${primaryKey} and \`fail-on-cache-miss\` is true.`)
      return
    }
    if (mode === 'main' && config.run.trim()) {
      core.info(`Running in nix-shell -p ${config.dependencies.join(' ')}:\n${config.run}`)
      const code = await runNixShell({
        nixPortable: np.path,
        location: config.location,
        runtime: np.npRuntime ?? 'auto',
        dependencies: config.dependencies,
        command: config.run
      })
      if (code !== 0) core.setFailed(`\`run\` exited with code ${code}`)
    }
  } catch (e) {
    core.setFailed(message(e))
  }
}

interface NixPortableSetup {
  path: string
  npRuntime?: string
}

/** Installs (or takes) nix-portable, chooses its runtime, exports it for later steps. */
async function setUp(config: Config): Promise<NixPortableSetup> {
  const path =
    config.nixPortable ||
    (await installNixPortable({ version: config.nixPortableVersion, info: core.info }))
  const choice = await chooseRuntime(
    config.runtime,
    config.location,
    realHost(config.allowUserNamespaces)
  )
  core.info(`nix-portable: ${path}; ${choice.reason}`)
  core.addPath(dirname(path))
  core.exportVariable('NP_LOCATION', config.location)
  if (choice.npRuntime) core.exportVariable('NP_RUNTIME', choice.npRuntime)
  // Without NP_GIT, nix-portable's first start builds git.
  const git = process.env.NP_GIT ? '' : await which('git')
  if (git) core.exportVariable('NP_GIT', git)
  core.setOutput('nix-portable', path)
  return { path, ...(choice.npRuntime ? { npRuntime: choice.npRuntime } : {}) }
}
