import { describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseRuntime } from '../../src/nix-portable/runtime.js'

function location(): { dir: string; stale: string } {
  const dir = mkdtempSync(join(tmpdir(), 'nsc-runtime-'))
  mkdirSync(join(dir, '.nix-portable', 'conf'), { recursive: true })
  const stale = join(dir, '.nix-portable', 'conf', 'last_auto_runtime')
  writeFileSync(stale, 'bwrap')
  return { dir, stale }
}

describe('chooseRuntime', () => {
  it.each([
    [true, undefined],
    [false, 'proot']
  ])(
    'auto with user namespaces working=%s exports %s and clears the stale choice',
    async (works, expected) => {
      const { dir, stale } = location()
      const choice = await chooseRuntime('auto', dir, () => Promise.resolve(works))
      expect(choice.npRuntime).toBe(expected)
      expect(existsSync(stale)).toBe(false)
      rmSync(dir, { recursive: true })
    }
  )

  it('keeps an explicit runtime and nix-portable cached choice alone', async () => {
    const { dir, stale } = location()
    const choice = await chooseRuntime('bwrap', dir, () => Promise.reject(new Error('not probed')))
    expect(choice.npRuntime).toBe('bwrap')
    expect(existsSync(stale)).toBe(true)
    rmSync(dir, { recursive: true })
  })
})
