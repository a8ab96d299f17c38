// Unprivileged user namespaces, which bwrap needs. Ubuntu 24.04 (GitHub's
// ubuntu-latest) restricts them through AppArmor
// (kernel.apparmor_restrict_unprivileged_userns = 1), so nix-portable falls back
// to proot, which traps every system call of every Nix command. With the input
// `allow-user-namespaces`, and only then, a runner that can sudo without a
// password gets the restriction lifted for the job. A self-hosted runner
// outlives the job, so there we only say what its admin could do.
import { readFile } from 'node:fs/promises'
import { run } from '../exec.js'

export const SYSCTL = 'kernel.apparmor_restrict_unprivileged_userns'
const SYSCTL_FILE = `/proc/sys/${SYSCTL.replace(/\./g, '/')}`

/** The cost the log names when proot has to stand in for bwrap. */
export const PROOT_COST =
  'proot traps every system call: Nix commands run about 3x slower than under bwrap'

export interface UsernsFacts {
  /** The input `allow-user-namespaces`. */
  allowed: boolean
  /** The sysctl's value, or undefined where the kernel has no such restriction. */
  restricted: '0' | '1' | undefined
  /** RUNNER_ENVIRONMENT: `github-hosted`, `self-hosted`, or unset outside Actions. */
  runnerEnvironment: string | undefined
  root: boolean
  /** `sudo -n true` works. */
  sudo: boolean
}

export type UsernsPlan =
  { action: 'lift'; command: string[]; note: string } | { action: 'none'; note: string }

/** What to do when a user namespace could not be made. Pure: unit-tested. */
export function planUserns(f: UsernsFacts): UsernsPlan {
  const setting = `${SYSCTL}=0`
  if (f.restricted !== '1') {
    return {
      action: 'none',
      note:
        f.restricted === undefined
          ? 'user namespaces are unavailable on this kernel (not an AppArmor restriction)'
          : `user namespaces fail although ${SYSCTL} is 0 (a container or seccomp may forbid them)`
    }
  }
  if (!f.allowed) {
    return {
      action: 'none',
      note:
        `AppArmor restricts unprivileged user namespaces (${SYSCTL}=1). ` +
        'Set `allow-user-namespaces: true` to lift it for the job on a GitHub-hosted runner.'
    }
  }
  if (f.runnerEnvironment === 'self-hosted') {
    return {
      action: 'none',
      note:
        '`allow-user-namespaces` is ignored on a self-hosted runner, which outlives the job: ' +
        `its admin can run \`sysctl -w ${setting}\` (or add an AppArmor profile for bwrap).`
    }
  }
  if (f.root)
    return { action: 'lift', command: ['sysctl', '-w', setting], note: `sysctl -w ${setting}` }
  if (f.sudo) {
    return {
      action: 'lift',
      command: ['sudo', '-n', 'sysctl', '-w', setting],
      note: `sudo sysctl -w ${setting}`
    }
  }
  return {
    action: 'none',
    note: `\`allow-user-namespaces\` needs root or passwordless sudo to set ${setting}, and this user has neither`
  }
}

/** The facts of this machine. */
export async function usernsFacts(allowed: boolean, env: NodeJS.ProcessEnv): Promise<UsernsFacts> {
  const value = (await readFile(SYSCTL_FILE, 'utf8').catch(() => '')).trim()
  const root = process.getuid?.() === 0
  const sudo =
    allowed &&
    !root &&
    (await run('sudo', ['-n', 'true']).then(
      () => true,
      () => false
    ))
  return {
    allowed,
    restricted: value === '0' || value === '1' ? value : undefined,
    runnerEnvironment: env.RUNNER_ENVIRONMENT,
    root,
    sudo
  }
}

/** What chooseRuntime needs of the host; tests pass their own. */
export interface Host {
  /** Whether this user can create a user namespace (what bwrap needs). */
  usernsWork(): Promise<boolean>
  facts(): Promise<UsernsFacts>
  /** Runs a command that changes the host (only for a plan the input allowed). */
  exec(command: string[]): Promise<void>
}

export function realHost(allowed: boolean, env: NodeJS.ProcessEnv = process.env): Host {
  return {
    usernsWork: () =>
      run('unshare', ['--user', '--map-root-user', 'true']).then(
        () => true,
        () => false
      ),
    facts: () => usernsFacts(allowed, env),
    exec: async ([cmd, ...args]) => {
      await run(cmd!, args)
    }
  }
}
