// Choosing nix-portable's runtime. bwrap needs unprivileged user namespaces,
// which Ubuntu 24.04 restricts (kernel.apparmor_restrict_unprivileged_userns);
// then only proot works. nix-portable caches its automatic choice in
// conf/last_auto_runtime, and a stale one breaks its fallback: clear it.
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Runtime } from '../config.js'
import { run } from '../exec.js'

export interface RuntimeChoice {
  /** NP_RUNTIME to export, or undefined to let nix-portable choose. */
  npRuntime?: string
  reason: string
}

/** Whether this user can create a user namespace (what bwrap needs). */
export async function userNamespacesWork(): Promise<boolean> {
  try {
    await run('unshare', ['--user', '--map-root-user', 'true'])
    return true
  } catch {
    return false
  }
}

export async function chooseRuntime(
  runtime: Runtime,
  location: string,
  probe: () => Promise<boolean> = userNamespacesWork
): Promise<RuntimeChoice> {
  if (runtime !== 'auto') return { npRuntime: runtime, reason: `runtime: ${runtime} (input)` }
  await rm(join(location, '.nix-portable', 'conf', 'last_auto_runtime'), { force: true })
  if (await probe()) return { reason: 'user namespaces work: nix-portable chooses its runtime' }
  return {
    npRuntime: 'proot',
    reason:
      'unprivileged user namespaces are restricted here, so bwrap cannot run: using proot (slower)'
  }
}
