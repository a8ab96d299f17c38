// Choosing nix-portable's runtime. bwrap needs unprivileged user namespaces,
// which Ubuntu 24.04 restricts (userns.ts); then only proot works, slowly.
// nix-portable caches its automatic choice in conf/last_auto_runtime, and a stale
// one breaks its fallback: clear it.
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Runtime } from '../config.js'
import { message } from '../errors.js'
import { planUserns, PROOT_COST, type Host } from './userns.js'

export interface RuntimeChoice {
  /** NP_RUNTIME to export, or undefined to let nix-portable choose. */
  npRuntime?: string
  reason: string
}

/**
 * An explicit runtime is taken as it is, without probing or touching the host.
 * `auto`: nix-portable chooses when user namespaces work; otherwise, where the
 * input allows it and AppArmor is the cause, the restriction is lifted for the
 * job; failing that, proot, with its cost in the reason.
 */
export async function chooseRuntime(
  runtime: Runtime,
  location: string,
  host: Host
): Promise<RuntimeChoice> {
  if (runtime !== 'auto') return { npRuntime: runtime, reason: `runtime: ${runtime} (input)` }
  await rm(join(location, '.nix-portable', 'conf', 'last_auto_runtime'), { force: true })
  if (await host.usernsWork()) {
    return { reason: 'user namespaces work: nix-portable chooses its runtime (bwrap)' }
  }
  const plan = planUserns(await host.facts())
  let why = plan.note
  if (plan.action === 'lift') {
    const lifted = await host.exec(plan.command).then(
      () => host.usernsWork(),
      (e: unknown) => {
        why = `\`${plan.note}\` failed: ${message(e)}`
        return false
      }
    )
    if (lifted) {
      return {
        reason: `lifted AppArmor's restriction on user namespaces for this job (${plan.note}): nix-portable chooses its runtime (bwrap)`
      }
    }
    if (why === plan.note) why = `\`${plan.note}\` did not make user namespaces work`
  }
  return { npRuntime: 'proot', reason: `bwrap cannot run here, so proot: ${PROOT_COST}. ${why}` }
}
