// Test rig: a CI job the way the product runs one, in a world: restore, run
// `nix-shell -p` through the launcher, save. In-process (as root) through the
// pipeline's functions, or as the world's user through the built CLI bundle.
import { execFileSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseConfig, type Config } from '../../src/config.js'
import type { Logger } from '../../src/log.js'
import { cacheContext } from '../../src/pipeline.js'
import type { CacheContext } from '../../src/snapshot/context.js'
import { restoreSnapshot, type RestoreReport } from '../../src/snapshot/restore.js'
import { saveSnapshot, type SaveReport } from '../../src/snapshot/save.js'
import {
  countBuilds,
  dbFile,
  NOBODY,
  nixPortable,
  runIn,
  storeDir,
  type RunResult,
  type World
} from './world.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface JobOptions {
  deps: string
  run?: string
  backend: 'local' | 'github' | 's3'
  cacheDir: string
  key?: string
  /** The CLI's --verbose. */
  verbose?: boolean
  /** More inputs by name (signing-key, trusted-public-keys, …). */
  inputs?: Record<string, string>
}

export class RecordingLogger implements Logger {
  infos: string[] = []
  warnings: string[] = []
  info(m: string): void {
    this.infos.push(m)
  }
  warning(m: string): void {
    this.warnings.push(m)
  }
}

export interface JobResult {
  restore: RestoreReport
  shell: RunResult
  builds: number
  save?: SaveReport
  log: RecordingLogger
}

export function jobConfig(world: World, o: JobOptions): Readonly<Config> {
  const inputs: Record<string, string> = {
    systemDependencies: o.deps,
    backend: o.backend,
    'cache-dir': o.cacheDir,
    location: world.location,
    'nix-portable': world.launcher,
    key: o.key ?? '',
    ...o.inputs
  }
  return parseConfig(name => inputs[name] ?? '', {
    ...world.env,
    GITHUB_WORKSPACE: world.workspace
  })
}

/** The pipeline's context for a job in `world`. */
export function contextFor(
  world: World,
  o: JobOptions,
  log: Logger = new RecordingLogger()
): Promise<CacheContext> {
  return cacheContext(jobConfig(world, o), log)
}

/** restore -> nix-shell -p deps --run run -> save, in this process. */
export async function job(world: World, o: JobOptions): Promise<JobResult> {
  const log = new RecordingLogger()
  const ctx = await contextFor(world, o, log)
  const restore = await restoreSnapshot(ctx)
  const deps = o.deps.split(/\s+/).filter(Boolean)
  const shell = await nixPortable(world, ['nix-shell', '-p', ...deps, '--run', o.run ?? 'true'])
  if (shell.code !== 0) throw new Error(`nix-shell failed: ${shell.stderr}`)
  const save = await saveSnapshot(ctx, restore.state)
  return { restore, shell, builds: countBuilds(shell.stderr), save, log }
}

let cliDir: string | undefined
/** The built CLI and a node to run it, where the world's user can reach them. */
export function cliRuntime(): { node: string; cli: string } {
  if (!cliDir) {
    const dist = join(ROOT, 'dist')
    if (!existsSync(join(dist, 'cli', 'index.js')))
      throw new Error('dist/cli is missing: run `npm run bundle`')
    // In the run's own folder (test/rig/global-setup.ts), which goes at its end.
    cliDir = mkdtempSync(join(process.env.NSC_RUN_DIR ?? tmpdir(), 'nsc-cli-'))
    chmodSync(cliDir, 0o755)
    cpSync(dist, join(cliDir, 'dist'), { recursive: true })
    cpSync(process.execPath, join(cliDir, 'node'))
  }
  return { node: join(cliDir, 'node'), cli: join(cliDir, 'dist', 'cli', 'index.js') }
}

/** `nix-store-cache <command> …` as the world's user, with the CLI bundle. */
export function cli(
  world: World,
  command: 'run' | 'restore' | 'save' | 'prune',
  o: JobOptions,
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<RunResult> {
  const { node, cli: entry } = cliRuntime()
  const flags: Record<string, string | undefined> = {
    systemDependencies: command === 'prune' ? undefined : o.deps,
    run: command === 'run' ? (o.run ?? 'true') : undefined,
    backend: o.backend,
    'cache-dir': o.cacheDir,
    location: world.location,
    'nix-portable': world.launcher,
    key: o.key,
    ...o.inputs
  }
  const args = [entry, command]
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) args.push(`--${k}`, v)
  if (o.verbose) args.push('--verbose')
  return runIn(world, node, args, { GITHUB_WORKSPACE: world.workspace, ...extraEnv })
}

/** Everything a restore could change: the store's listing and the database's bytes. */
export function storeFingerprint(world: World): string {
  const names = existsSync(storeDir(world))
    ? execFileSync('find', [storeDir(world), '-printf', '%P %m %s\n'])
        .toString()
        .split('\n')
        .sort()
        .join('\n')
    : ''
  const db = existsSync(dbFile(world)) ? readFileSync(dbFile(world)).toString('base64') : ''
  return `${names}\n${db}`
}

export { NOBODY }
