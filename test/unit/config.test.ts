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
      failOnCacheMiss: false,
      stallMs: 60_000
    })
    expect(config({ systemDependencies: 'gcc', 'stall-timeout': '30s' }).stallMs).toBe(30_000)
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('reads the s3 inputs, with the prefix and region defaults', () => {
    const c = config({ systemDependencies: 'gcc', backend: 's3', 's3-bucket': 'ci-cache' })
    expect(c.s3).toEqual({
      bucket: 'ci-cache',
      prefix: 'nix-store-cache/',
      endpoint: '',
      region: 'us-east-1',
      forcePathStyle: false
    })
    const ceph = config(
      {
        systemDependencies: 'gcc',
        backend: 's3',
        's3-bucket': 'ci-cache',
        's3-prefix': 'team/',
        's3-endpoint': 'http://ceph.lan:7480',
        's3-force-path-style': 'true'
      },
      { HOME: '/h', AWS_REGION: 'eu-west-1' }
    )
    expect(ceph.s3).toMatchObject({ prefix: 'team/', region: 'eu-west-1', forcePathStyle: true })
    expect(config({ systemDependencies: 'gcc' }).s3).toBeUndefined()
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
      { systemDependencies: 'gcc', backend: 'gcs' },
      /Input `backend`: `gcs` is not one of `auto`, `local`, `github`, `s3`/
    ],
    [
      { systemDependencies: 'gcc', backend: 's3' },
      /Input `s3-bucket` is empty: `backend: s3` needs/
    ],
    [
      { systemDependencies: 'gcc', backend: 's3', 's3-bucket': 'My_Bucket' },
      /Input `s3-bucket`: `My_Bucket` is not an S3 bucket name/
    ],
    [
      { systemDependencies: 'gcc', backend: 's3', 's3-bucket': 'b1b', 's3-endpoint': 'ceph:7480' },
      /Input `s3-endpoint`: `ceph:7480` is not a URL/
    ],
    [
      { systemDependencies: 'gcc', backend: 's3', 's3-bucket': 'b1b', 's3-force-path-style': 'y' },
      /Input `s3-force-path-style`: `y` is not `true` or `false`/
    ],
    [{ systemDependencies: 'gcc', runtime: 'docker' }, /Input `runtime`: `docker` is not one of/],
    [
      { systemDependencies: 'gcc', 'nix-portable-version': 'latest' },
      /Input `nix-portable-version`: `latest` is not a release tag/
    ],
    [
      { systemDependencies: 'gcc', 'stall-timeout': '0' },
      /Input `stall-timeout` must be longer than 0/
    ],
    [
      { systemDependencies: 'gcc', 'stall-timeout': '5 minutes' },
      /Input `stall-timeout`: `5 minutes` is not a duration/
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
