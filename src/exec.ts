// Commands as argument arrays, never shell strings; failures carry their stderr.
import { getExecOutput } from '@actions/exec'

export interface RunOptions {
  cwd?: string
  env?: Record<string, string>
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await getExecOutput(cmd, args, {
    silent: true,
    ignoreReturnCode: true,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.env ? { env: opts.env } : {})
  })
  if (r.exitCode !== 0) {
    const detail = r.stderr.trim().split('\n').slice(-5).join('\n')
    throw new Error(
      `${cmd} ${args.slice(0, 4).join(' ')}${args.length > 4 ? ' …' : ''} failed (exit ${r.exitCode}): ${detail}`
    )
  }
  return r.stdout
}
