// Commands as argument arrays, never shell strings; failures carry their stderr.
import { getExecOutput } from '@actions/exec'
import { which } from './which.js'

export interface RunOptions {
  cwd?: string
  env?: Record<string, string>
}

const resolved = new Map<string, string>()

/**
 * `cmd` as an absolute path: @actions/exec searches PATH itself, through the same
 * which() that prints a line for every folder the user cannot search (which.ts).
 */
async function locate(cmd: string): Promise<string> {
  if (cmd.includes('/')) return cmd
  let path = resolved.get(cmd)
  if (!path) {
    path = await which(cmd)
    if (!path) throw new Error(`${cmd} is not on PATH; install it (Debian and Ubuntu ship it)`)
    resolved.set(cmd, path)
  }
  return path
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await getExecOutput(await locate(cmd), args, {
    silent: true,
    ignoreReturnCode: true,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.env ? { env: opts.env } : {})
  })
  if (r.exitCode !== 0) throw new Error(failure(cmd, args, r.exitCode, r.stderr))
  return r.stdout
}

/** The cause first (what the command said), then which command: a long command line never hides it. */
export function failure(
  cmd: string,
  args: readonly string[],
  /** The exit code, or the signal that ended it. */
  code: number | NodeJS.Signals,
  stderr: string
): string {
  const cause = stderr.trim().split('\n').filter(Boolean).slice(-5).join('; ') || 'no message'
  const line = `${cmd} ${args.slice(0, 4).join(' ')}${args.length > 4 ? ' …' : ''}`
  return `${cause} (${line}: ${typeof code === 'number' ? `exit ${code}` : `killed by ${code}`})`
}
