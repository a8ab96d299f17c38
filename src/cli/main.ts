// The command-line entry: restore, run nix-shell, save; the exit code is the
// command's. Cache problems are warnings; bad flags fail before anything is touched.
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseConfig, type Config } from '../config.js'
import { InputError, message } from '../errors.js'
import { which } from '../which.js'
import { consoleLogger, type Logger } from '../log.js'
import { runNixShell } from '../nix-portable/run.js'
import { chooseRuntime } from '../nix-portable/runtime.js'
import { realHost } from '../nix-portable/userns.js'
import { cacheContext } from '../pipeline.js'
import { restoreLine, saveLine } from '../report-text.js'
import { parseState, type CacheContext, type CacheState } from '../snapshot/context.js'
import { restoreSnapshot } from '../snapshot/restore.js'
import { saveSnapshot } from '../snapshot/save.js'
import { parseArgs } from './args.js'
import { createBackend } from '../backend/index.js'
import { prune } from '../retention/prune.js'
import { filterDebugOutput } from './debug-lines.js'

export async function cliMain(
  argv: readonly string[],
  log: Logger = consoleLogger,
  debugOutput: (verbose: boolean) => void = filterDebugOutput
): Promise<number> {
  let config: Readonly<Config>
  let command: string
  try {
    const parsed = parseArgs(argv)
    debugOutput(parsed.verbose)
    command = parsed.command
    config = parseConfig(name => parsed.flags.get(name) ?? '', process.env, command !== 'prune')
    if (command !== 'prune')
      config = { ...config, nixPortable: config.nixPortable || (await findNixPortable()) }
    if (command === 'run' && !config.run.trim())
      throw new InputError('flag `--run` is empty: give the command to run')
  } catch (e) {
    if (!(e instanceof InputError)) throw e
    console.error(`nix-store-cache: ${e.message}`)
    return 2
  }
  if (command === 'prune') return pruneCache(config, log)
  const stateFile = join(config.location, '.nix-store-cache.state.json')

  if (command === 'run' || command === 'restore') {
    const choice = await chooseRuntime(
      config.runtime,
      config.location,
      realHost(config.allowUserNamespaces)
    )
    log.info(`nix-portable: ${config.nixPortable}; ${choice.reason}`)
    const runtime = choice.npRuntime ?? 'auto'
    const ctx = await cacheContext(config, log, config.nixPortable, runtime)
    const r = await restoreSnapshot(ctx)
    log.info(restoreLine(r))
    if (command === 'restore') {
      const state = { ...r.state, nixPortable: { path: config.nixPortable, runtime } }
      await writeFile(stateFile, JSON.stringify(state))
      return 0
    }
    const code = await runNixShell({ ...config, runtime, command: config.run })
    if (code !== 0) {
      log.info(`the command exited with ${code}: not saving`)
      return code
    }
    if (config.save) await save(ctx, r.state, log)
    return code
  }
  await save(await cacheContext(config, log), await readState(stateFile), log)
  return 0
}

async function save(ctx: CacheContext, state: CacheState, log: Logger): Promise<void> {
  try {
    const s = await saveSnapshot(ctx, state)
    log.info(saveLine(s))
  } catch (e) {
    log.warning(`saving the cache failed: ${message(e)}`)
  }
}

/** The whole cache of the configured backend; exit 1 when the cache cannot be pruned. */
async function pruneCache(config: Readonly<Config>, log: Logger): Promise<number> {
  try {
    await prune(createBackend(config), log, config.retention)
    return 0
  } catch (e) {
    log.warning(`pruning the cache failed: ${message(e)}`)
    return 1
  }
}

async function readState(file: string): Promise<CacheState> {
  if (!existsSync(file)) return parseState({})
  return parseState(JSON.parse(await readFile(file, 'utf8')))
}

async function findNixPortable(): Promise<string> {
  const found = await which('nix-portable')
  if (!found) {
    throw new InputError(
      "flag `--nix-portable` is empty and no `nix-portable` is on PATH: pass the executable's path"
    )
  }
  return found
}
