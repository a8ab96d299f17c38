// A Nix command in the job's location through nix-portable, with the job's
// environment (NIX_PATH, NIX_CONFIG, …) plus NP_LOCATION and NP_RUNTIME.
import { run } from '../exec.js'
import { nixPortableEnv } from './run.js'

export interface NixPortableRun {
  nixPortable: string
  location: string
  /** NP_RUNTIME, or 'auto' to let nix-portable choose. */
  runtime: string
}

/** Runs `nix-portable <args>`; `config` lines are added to NIX_CONFIG. Resolves to stdout. */
export async function nixCommand(
  np: NixPortableRun,
  args: string[],
  config: readonly string[] = []
): Promise<string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  Object.assign(env, nixPortableEnv(np.location, np.runtime))
  if (config.length > 0) {
    env.NIX_CONFIG = [process.env.NIX_CONFIG, ...config].filter(Boolean).join('\n')
  }
  return run(np.nixPortable, args, { env })
}
