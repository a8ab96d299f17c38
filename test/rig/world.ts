// Test rig: a runner's world in a temp dir (NP_LOCATION, HOME, RUNNER_TEMP,
// GITHUB_WORKSPACE), and nix run through the nix-portable stand-in inside it.
import { execFile, type ExecFileOptions } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, chown, cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// NSC_RIG_DIR: where bundled benchmarks find the rig (they do not run from test/rig).
export const RIG_DIR = process.env.NSC_RIG_DIR ?? dirname(fileURLToPath(import.meta.url))

/** The unprivileged user GitHub-like tests run as (root ignores 0555 store modes). */
export const NOBODY = { uid: 65534, gid: 65534 }

export interface World {
  root: string
  /** The nix-portable stand-in, copied into the world so any user can run it. */
  launcher: string
  home: string
  location: string
  runnerTemp: string
  workspace: string
  /** Run as uid/gid 65534 instead of the current user. */
  unprivileged: boolean
  env: NodeJS.ProcessEnv
}

/** The Nix versions the rig runs: Debian bookworm's, and trixie's from a root. */
export type NixVersion = '2.8' | '2.26'
export const NIX_VERSIONS: readonly NixVersion[] = ['2.8', '2.26']

/** Where test/rig/nix-root.sh keeps the Debian root of a newer Nix (.ci/run builds it). */
export function nixRoot(version: NixVersion): string | undefined {
  if (version === '2.8') return undefined
  const cache = process.env.NSC_RIG_CACHE ?? '/var/cache/nix-store-cache-rig'
  const root = join(cache, 'debian-trixie')
  if (!existsSync(join(root, '.complete'))) {
    throw new Error(`no Nix ${version} root at ${root}: run test/rig/nix-root.sh trixie (as root)`)
  }
  return root
}

export interface WorldOptions {
  unprivileged?: boolean
  /** Nix in this world uses SQLite's WAL, as Debian's nix does (nix-portable does not). */
  wal?: boolean
  /** Which Nix the world's nix-portable runs (default 2.8, Debian's own). */
  nix?: NixVersion
  /** Nix runs with `experimental-features = ca-derivations`. */
  ca?: boolean
}

export async function makeWorld(opts: WorldOptions = {}): Promise<World> {
  const root = await mkdtemp(join(tmpdir(), 'nsc-world-'))
  // The checkout may sit below folders an unprivileged user cannot enter.
  const rig = join(root, 'rig')
  await cp(join(RIG_DIR, 'nix-portable'), join(rig, 'nix-portable'))
  await cp(join(RIG_DIR, 'nixpkgs'), join(rig, 'nixpkgs'), { recursive: true })
  // Read by the launcher however it is started (in-process restores, setpriv, the CLI).
  const nixRootDir = nixRoot(opts.nix ?? '2.8')
  await writeFile(
    join(rig, 'world.env'),
    (nixRootDir ? `RIG_NIX_ROOT='${nixRootDir}'\n` : '') +
      (opts.ca ? "RIG_WORLD_NIX_CONFIG='extra-experimental-features = ca-derivations'\n" : '')
  )
  const dirs = {
    home: join(root, 'home'),
    location: join(root, 'location'),
    runnerTemp: join(root, 'runner-temp'),
    workspace: join(root, 'workspace')
  }
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true })
  const unprivileged = opts.unprivileged ?? false
  if (unprivileged) {
    await chmod(root, 0o755)
    for (const d of Object.values(dirs)) await chown(d, NOBODY.uid, NOBODY.gid)
  }
  const env: NodeJS.ProcessEnv = {
    // A runner's PATH: root's may list folders another user cannot enter.
    PATH: unprivileged
      ? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
      : process.env.PATH,
    HOME: dirs.home,
    NP_LOCATION: dirs.location,
    RUNNER_TEMP: dirs.runnerTemp,
    GITHUB_WORKSPACE: dirs.workspace,
    NIX_PATH: `nixpkgs=${join(rig, 'nixpkgs')}`,
    RIG_WAL: opts.wal ? '1' : '0'
  }
  return { root, launcher: join(rig, 'nix-portable'), ...dirs, unprivileged, env }
}

/** Removes a world, store folders (mode 0555) included. */
export async function removeWorld(world: World): Promise<void> {
  await makeWritable(world.root)
  await rm(world.root, { recursive: true, force: true })
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o755).catch(() => undefined)
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
  for (const e of entries) if (e.isDirectory()) await makeWritable(join(dir, e.name))
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** The command line that runs `cmd` as the world's user (setpriv when unprivileged). */
export function asWorldUser(world: World, cmd: string, args: string[]): [string, string[]] {
  if (!world.unprivileged) return [cmd, args]
  const ids = ['--reuid', String(NOBODY.uid), '--regid', String(NOBODY.gid), '--clear-groups']
  return ['setpriv', [...ids, '--', cmd, ...args]]
}

/** Runs a command in the world, as the world's user. Never throws on a non-zero exit. */
export function runIn(
  world: World,
  cmd: string,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<RunResult> {
  const env = { ...world.env, ...extraEnv }
  const [file, argv] = asWorldUser(world, cmd, args)
  const options: ExecFileOptions = { env, cwd: world.workspace, maxBuffer: 64 * 1024 * 1024 }
  return new Promise(resolve => {
    execFile(file, argv, options, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

/** `nix-portable <args>` through the rig's stand-in launcher. */
export function nixPortable(
  world: World,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<RunResult> {
  return runIn(world, world.launcher, args, extraEnv)
}

/** Like nixPortable, but fails with nix's own stderr when the command fails. */
export async function nixOk(
  world: World,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<string> {
  const r = await nixPortable(world, args, extraEnv)
  if (r.code !== 0)
    throw new Error(`nix-portable ${args.join(' ')} failed (${r.code}):\n${r.stderr}`)
  return r.stdout
}

/** Paths of `nix/store` and the database inside a world's NP_LOCATION. */
export function storeDir(world: World): string {
  return join(world.location, '.nix-portable', 'nix', 'store')
}
export function dbFile(world: World): string {
  return join(world.location, '.nix-portable', 'nix', 'var', 'nix', 'db', 'db.sqlite')
}

/** Counts `building '…'` lines: how many derivations nix built. */
export function countBuilds(stderr: string): number {
  return stderr.split('\n').filter(l => l.startsWith("building '")).length
}
