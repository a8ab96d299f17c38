// A location's Nix database, made by the location's own Nix: every Nix version
// (2.8 to 2.34) has its own tables, triggers, indexes and migration records
// (`ca-schema` file, `SchemaMigrations` table), and only it knows them. `nix-store
// --init` opens the store, which creates the database or migrates it in place,
// and does nothing else. With ca-derivations on, Nix adds its Realisations tables.
import { run } from '../exec.js'
import { nixPortableEnv } from './run.js'

export interface NixPortableRun {
  nixPortable: string
  location: string
  /** NP_RUNTIME, or 'auto' to let nix-portable choose. */
  runtime: string
}

/** Has the location's Nix create (or migrate) its database; `ca` adds the ca-derivations tables. */
export async function initStoreDb(np: NixPortableRun, ca: boolean): Promise<void> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  Object.assign(env, nixPortableEnv(np.location, np.runtime))
  if (ca) {
    env.NIX_CONFIG = [process.env.NIX_CONFIG, 'extra-experimental-features = ca-derivations']
      .filter(Boolean)
      .join('\n')
  }
  await run(np.nixPortable, ['nix-store', '--init'], { env })
}
