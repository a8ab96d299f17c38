import { describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseRuntime } from '../../src/nix-portable/runtime.js'
import { planUserns, type Host, type UsernsFacts } from '../../src/nix-portable/userns.js'

function location(): { dir: string; stale: string } {
  const dir = mkdtempSync(join(tmpdir(), 'nsc-runtime-'))
  mkdirSync(join(dir, '.nix-portable', 'conf'), { recursive: true })
  const stale = join(dir, '.nix-portable', 'conf', 'last_auto_runtime')
  writeFileSync(stale, 'bwrap')
  return { dir, stale }
}

const RESTRICTED: UsernsFacts = {
  allowed: true,
  restricted: '1',
  runnerEnvironment: 'github-hosted',
  root: false,
  sudo: true
}

/** A host whose user namespaces start working once the sysctl command ran. */
function fakeHost(
  facts: UsernsFacts,
  works = false,
  execFails = false
): Host & { ran: string[][] } {
  const ran: string[][] = []
  let lifted = false
  return {
    ran,
    usernsWork: () => Promise.resolve(works || lifted),
    facts: () => Promise.resolve(facts),
    exec: command => {
      ran.push(command)
      if (execFails) return Promise.reject(new Error('sudo: a password is required'))
      lifted = command.includes('kernel.apparmor_restrict_unprivileged_userns=0')
      return Promise.resolve()
    }
  }
}

describe('planUserns', () => {
  it.each([
    ['lifts with sudo on a GitHub-hosted runner', {}, 'lift', /sudo sysctl -w/],
    ['lifts without sudo as root', { root: true, sudo: false }, 'lift', /^sysctl -w/],
    [
      'leaves the host alone without the input',
      { allowed: false },
      'none',
      /allow-user-namespaces: true/
    ],
    [
      'never changes a self-hosted runner',
      { runnerEnvironment: 'self-hosted' },
      'none',
      /its admin/
    ],
    ['needs root or passwordless sudo', { sudo: false }, 'none', /neither/],
    ['does nothing when AppArmor is not the cause', { restricted: '0' }, 'none', /is 0/],
    [
      'does nothing on a kernel without the sysctl',
      { restricted: undefined },
      'none',
      /unavailable/
    ],
    ['lifts from the CLI outside Actions', { runnerEnvironment: undefined }, 'lift', /sudo sysctl/]
  ] as const)('%s', (_, change, action, note) => {
    const plan = planUserns({ ...RESTRICTED, ...change })
    expect(plan.action).toBe(action)
    expect(plan.note).toMatch(note)
    if (plan.action === 'lift') {
      expect(plan.command.slice(-3)).toEqual([
        'sysctl',
        '-w',
        'kernel.apparmor_restrict_unprivileged_userns=0'
      ])
      expect(plan.command[0]).toBe((change as Partial<UsernsFacts>).root ? 'sysctl' : 'sudo')
    }
  })
})

describe('chooseRuntime', () => {
  it.each([
    [true, undefined],
    [false, 'proot']
  ])(
    'auto with user namespaces working=%s exports %s and clears the stale choice',
    async (works, expected) => {
      const { dir, stale } = location()
      const host = fakeHost({ ...RESTRICTED, allowed: false }, works)
      const choice = await chooseRuntime('auto', dir, host)
      expect(choice.npRuntime).toBe(expected)
      expect(existsSync(stale)).toBe(false)
      expect(host.ran).toEqual([])
      if (!works) expect(choice.reason).toMatch(/about 3x slower.*allow-user-namespaces/)
      rmSync(dir, { recursive: true })
    }
  )

  it('lifts the restriction when allowed, then lets nix-portable choose bwrap', async () => {
    const { dir } = location()
    const host = fakeHost(RESTRICTED)
    const choice = await chooseRuntime('auto', dir, host)
    expect(host.ran).toEqual([
      ['sudo', '-n', 'sysctl', '-w', 'kernel.apparmor_restrict_unprivileged_userns=0']
    ])
    expect(choice.npRuntime).toBeUndefined()
    expect(choice.reason).toMatch(/lifted AppArmor's restriction/)
    rmSync(dir, { recursive: true })
  })

  it('falls back to proot, saying why, when lifting fails', async () => {
    const { dir } = location()
    const choice = await chooseRuntime('auto', dir, fakeHost(RESTRICTED, false, true))
    expect(choice.npRuntime).toBe('proot')
    expect(choice.reason).toMatch(/failed: sudo: a password is required/)
    rmSync(dir, { recursive: true })
  })

  it('keeps an explicit runtime, probes nothing and changes nothing', async () => {
    const { dir, stale } = location()
    const host = fakeHost(RESTRICTED)
    host.usernsWork = () => Promise.reject(new Error('not probed'))
    const choice = await chooseRuntime('bwrap', dir, host)
    expect(choice.npRuntime).toBe('bwrap')
    expect(existsSync(stale)).toBe(true)
    expect(host.ran).toEqual([])
    rmSync(dir, { recursive: true })
  })
})
