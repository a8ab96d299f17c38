// Action state travels as a file: the runner hands state to post as STATE_*
// variables, and Linux caps one at 128 KiB, while a big store's state is larger.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keepState, loadState, STATE_FILE_ENV } from '../../src/action/state.js'
import { parseState, type CacheState } from '../../src/snapshot/context.js'
import { parseFileCommands } from '../rig/runner.js'

const HASH = '0123456789abcdfghijklmnpqrsvwxyz'

function bigState(): CacheState {
  const paths = Array.from(
    { length: 5000 },
    (_, i) => `/nix/store/${HASH}-package-number-${i}`
  ).sort()
  return {
    version: 1,
    watermark: 42,
    cacheHit: true,
    matchedKey: 'k',
    manifest: { format: 1, createdAt: '', packs: [{ key: 'pack-1', paths }] }
  }
}

describe('action state', () => {
  let dir: string
  const saved = { ...process.env }
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nsc-state-'))
    for (const f of ['GITHUB_STATE', 'GITHUB_ENV']) {
      process.env[f] = join(dir, f)
      writeFileSync(process.env[f], '')
    }
    process.env.RUNNER_TEMP = dir
  })
  afterEach(() => {
    process.env = saved
    rmSync(dir, { recursive: true, force: true })
  })

  it('passes a state far over 128 KiB from main to post through a file', async () => {
    const state = bigState()
    expect(JSON.stringify(state).length).toBeGreaterThan(128 * 1024)
    await keepState(state, 'main')
    expect(statSync(process.env.GITHUB_STATE!).size).toBeLessThan(1024)
    const file = parseFileCommands(readFileSync(process.env.GITHUB_STATE!, 'utf8'))['state-file']!
    process.env['STATE_state-file'] = file
    expect(await loadState('post')).toEqual(state)
  })

  it('passes it from the restore sub-action to save through the environment', async () => {
    const state = bigState()
    await keepState(state, 'restore')
    const exported = parseFileCommands(readFileSync(process.env.GITHUB_ENV!, 'utf8'))
    process.env[STATE_FILE_ENV] = exported[STATE_FILE_ENV]
    expect(await loadState('save')).toEqual(state)
  })

  it('has nothing for a post step whose main kept nothing', async () => {
    expect(await loadState('post')).toBeUndefined()
  })
})

describe('parseState', () => {
  const paths = [`/nix/store/${HASH}-a`]
  const entry = {
    key: 'nix-store-cache-v1-index-x',
    manifest: { format: 1, createdAt: '', packs: [{ key: 'p', paths }], dependencies: ['gcc'] }
  }

  it('keeps where the restore took its packs from, the entries it read and its nix-portable', () => {
    const state = parseState({
      watermark: 3,
      cacheHit: true,
      source: 'packages',
      entries: [entry],
      nixPortable: { path: '/opt/np', runtime: 'bwrap' }
    })
    expect(state.source).toBe('packages')
    expect(state.entries).toEqual([entry])
    expect(state.nixPortable).toEqual({ path: '/opt/np', runtime: 'bwrap' })
  })

  it.each([
    [{ source: 'everything' }, 'source'],
    [{ nixPortable: { path: 1 } }, 'nixPortable']
  ])('drops a malformed %j', (value, field) => {
    expect(parseState(value)).not.toHaveProperty(field)
  })

  it('refuses an entry whose manifest is malformed', () => {
    const bad = { ...entry, manifest: { ...entry.manifest, dependencies: ['a b'] } }
    expect(() => parseState({ entries: [bad] })).toThrow(/malformed dependencies/)
  })
})
