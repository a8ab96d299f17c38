// Running nix-portable: `nix-portable nix-shell -p <deps> --run <command>` with
// NP_LOCATION (and NP_RUNTIME) set, its output passed straight through.
import { spawn } from 'node:child_process'
import { sha256 } from './install.js'

export interface ShellOptions {
  nixPortable: string
  location: string
  runtime: string
  dependencies: readonly string[]
  command: string
}

export function nixShellArgs(deps: readonly string[], command: string): string[] {
  return ['nix-shell', '-p', ...deps, '--run', command]
}

export function nixPortableEnv(location: string, runtime: string): Record<string, string> {
  return { NP_LOCATION: location, ...(runtime !== 'auto' ? { NP_RUNTIME: runtime } : {}) }
}

/** Runs the command inside nix-shell; resolves to its exit code. */
export function runNixShell(o: ShellOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(o.nixPortable, nixShellArgs(o.dependencies, o.command), {
      stdio: 'inherit',
      env: { ...process.env, ...nixPortableEnv(o.location, o.runtime) }
    })
    child.on('error', e => reject(new Error(`could not start ${o.nixPortable}: ${e.message}`)))
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))
  })
}

/** A key part for a nix-portable executable we did not download: a digest of its bytes. */
export async function executableId(path: string): Promise<string> {
  return `custom-${(await sha256(path)).slice(0, 12)}`
}
