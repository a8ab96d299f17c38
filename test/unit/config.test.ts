import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config.js'
import { InputError } from '../../src/errors.js'

function config(inputs: Record<string, string>, env: NodeJS.ProcessEnv = { HOME: '/home/runner' }) {
  return parseConfig(name => inputs[name] ?? '', env)
}

describe('parseConfig', () => {
  it('fills the defaults', () => {
    const c = config({ systemDependencies: 'gcc' })
    expect(c).toMatchObject({
      dependencies: ['gcc'],
      backend: 'local',
      cacheDir: '/home/runner/.cache/nix-store-cache',
      location: '/home/runner',
      nixPortable: '',
      nixPortableVersion: 'v012',
      runtime: 'auto',
      save: true,
      failOnCacheMiss: false
    })
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('chooses the github backend inside GitHub Actions', () => {
    expect(
      config({ systemDependencies: 'gcc' }, { HOME: '/h', GITHUB_ACTIONS: 'true' }).backend
    ).toBe('github')
    expect(
      config(
        { systemDependencies: 'gcc', backend: 'local' },
        { HOME: '/h', GITHUB_ACTIONS: 'true' }
      ).backend
    ).toBe('local')
  })

  it.each([
    [{ systemDependencies: '' }, /Input `systemDependencies` is empty/],
    [{ systemDependencies: 'gcc', save: 'yes' }, /Input `save`: `yes` is not `true` or `false`/],
    [
      { systemDependencies: 'gcc', 'fail-on-cache-miss': '1' },
      /Input `fail-on-cache-miss`: `1` is not/
    ],
    [
      { systemDependencies: 'gcc', backend: 's3' },
      /Input `backend`: `s3` is not one of `auto`, `local`, `github`/
    ],
    [{ systemDependencies: 'gcc', runtime: 'docker' }, /Input `runtime`: `docker` is not one of/],
    [
      { systemDependencies: 'gcc', 'nix-portable-version': 'latest' },
      /Input `nix-portable-version`: `latest` is not a release tag/
    ],
    [
      { systemDependencies: 'gcc', 'restore-keys': 'a,b' },
      /Input `restore-keys`: `a,b` contains a comma/
    ]
  ])('refuses %j', (inputs, message) => {
    expect(() => config(inputs)).toThrow(InputError)
    expect(() => config(inputs)).toThrow(message)
  })
})
