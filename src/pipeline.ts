// The cache around a nix-shell: shared by the CLI and the action's entry points.
import { arch, platform } from 'node:os'
import { createBackend } from './backend/index.js'
import type { Config } from './config.js'
import type { KeyContext } from './keys.js'
import type { Logger } from './log.js'
import { initStoreDb } from './nix-portable/init-db.js'
import { findRoots } from './packages/roots.js'
import { executableId } from './nix-portable/run.js'
import type { CacheContext } from './snapshot/context.js'
import { layout } from './store/layout.js'

export async function keyContext(config: Config): Promise<KeyContext> {
  return {
    os: platform(),
    arch: arch(),
    nixPortable: config.nixPortable
      ? await executableId(config.nixPortable)
      : config.nixPortableVersion,
    dependencies: config.dependencies,
    userKey: config.userKey
  }
}

/**
 * `nixPortable` and `runtime`: the executable and NP_RUNTIME the job runs (the
 * action installs one and chooses the runtime; the CLI takes them from flags).
 */
export async function cacheContext(
  config: Config,
  log: Logger,
  nixPortable: string = config.nixPortable,
  runtime: string = config.runtime
): Promise<CacheContext> {
  const np = { nixPortable, location: config.location, runtime }
  return {
    keys: await keyContext(config),
    userRestoreKeys: config.restoreKeys,
    layout: layout(config.location),
    backend: createBackend(config),
    log,
    initDb: ca => initStoreDb(np, ca),
    roots: via =>
      findRoots(
        via ? { ...np, nixPortable: via.path, runtime: via.runtime } : np,
        config.dependencies,
        layout(config.location).storeDir
      ),
    trust: {
      trusted: config.trustedKeys,
      ...(config.signingKey ? { signingKey: config.signingKey } : {})
    }
  }
}
