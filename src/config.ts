// Inputs -> one typed, validated, read-only Config. The action reads inputs with
// core.getInput, the CLI from its flags: both pass a getter with the same names.
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { InputError } from './errors.js'
import { parseDependencies, parseRestoreKeys } from './keys.js'
import {
  parsePublicKey,
  parseSecretKey,
  type SigningKey,
  type TrustedKey
} from './trust/signatures.js'

export type BackendName = 'local' | 'github' | 's3'
export type Runtime = 'auto' | 'bwrap' | 'proot' | 'nix'

export interface Config {
  dependencies: readonly string[]
  run: string
  userKey: string
  restoreKeys: readonly string[]
  backend: BackendName
  cacheDir: string
  location: string
  /** Path of an existing nix-portable executable, or '' to download one. */
  nixPortable: string
  nixPortableVersion: string
  runtime: Runtime
  /** May lift AppArmor's restriction on user namespaces for the job (userns.ts). */
  allowUserNamespaces: boolean
  save: boolean
  /** Saves sign every path with it (input `signing-key`). */
  signingKey?: SigningKey
  /** Restores register only paths signed by one of these (input `trusted-public-keys`). */
  trustedKeys: readonly TrustedKey[]
  failOnCacheMiss: boolean
  workspace: string
  /** backend: s3 (inputs `s3-*`); credentials come from the AWS SDK's default chain only. */
  s3?: S3Config
  /** What a prune keeps (inputs `prune`, `keep-snapshots`, `max-age`, `max-size`, `grace`, `dry-run`). */
  retention: Retention
  /**
   * A cache transfer not done this long after its bytes at 1 MiB/s would be is
   * given up, and the job makes no more cache calls (input `stall-timeout`).
   */
  stallMs: number
  /** GitHub token for the cache REST API (input `token`); '' for none. */
  token: string
  /** `owner/name` and the ref the job runs on (GITHUB_REPOSITORY, GITHUB_REF). */
  repository: string
  ref: string
}

export interface Retention {
  /** The post step prunes (local, s3) or purges (github, with a token). */
  prune: boolean
  /** The newest N snapshots of each dependency set and key (and index entries of each attribute). */
  keepSnapshots: number
  /** Entries of a set neither restored nor saved for this long go. */
  maxAgeMs: number
  /** A budget for the whole cache: past it, the least recently used sets go, whole. */
  maxSizeBytes?: number
  /** Nothing younger is ever deleted. */
  graceMs: number
  dryRun: boolean
}

export interface S3Config {
  bucket: string
  /** Every object's key starts with it. */
  prefix: string
  /** '' for AWS itself. */
  endpoint: string
  region: string
  forcePathStyle: boolean
}

export type InputGetter = (name: string) => string

/** `needsDependencies`: false for commands that act on the whole cache (prune). */
export function parseConfig(
  input: InputGetter,
  env: NodeJS.ProcessEnv,
  needsDependencies = true
): Readonly<Config> {
  const get = (name: string): string => input(name).trim()
  const home = env.HOME || homedir()
  const deps = get('systemDependencies')
  const config: Config = {
    dependencies: needsDependencies || deps ? parseDependencies(deps) : [],
    run: input('run'),
    userKey: get('key'),
    restoreKeys: parseRestoreKeys(input('restore-keys')),
    backend: parseBackend(get('backend') || 'auto', env),
    cacheDir: absolute(get('cache-dir') || join(home, '.cache', 'nix-store-cache'), 'cache-dir'),
    location: absolute(get('location') || home, 'location'),
    nixPortable: get('nix-portable') ? absolute(get('nix-portable'), 'nix-portable') : '',
    nixPortableVersion: parseVersion(get('nix-portable-version') || 'v012'),
    runtime: oneOf(get('runtime') || 'auto', 'runtime', ['auto', 'bwrap', 'proot', 'nix'] as const),
    allowUserNamespaces: parseBool(
      get('allow-user-namespaces') || 'false',
      'allow-user-namespaces'
    ),
    save: parseBool(get('save') || 'true', 'save'),
    trustedKeys: parseTrustedKeys(get('trusted-public-keys')),
    failOnCacheMiss: parseBool(get('fail-on-cache-miss') || 'false', 'fail-on-cache-miss'),
    workspace: env.GITHUB_WORKSPACE || process.cwd(),
    retention: parseRetention(get),
    stallMs: parseStallTimeout(get('stall-timeout') || '1m'),
    token: get('token'),
    repository: env.GITHUB_REPOSITORY ?? '',
    ref: env.GITHUB_REF ?? ''
  }
  const signingKey = get('signing-key')
  if (signingKey) config.signingKey = parseSigningKey(signingKey)
  if (config.backend === 's3') config.s3 = parseS3(get, env)
  return Object.freeze(config)
}

/** Never echoes the value: it is a secret. */
function parseSigningKey(value: string): SigningKey {
  const key = parseSecretKey(value)
  if (!key) {
    throw new InputError(
      'Input `signing-key` is not a Nix secret key: pass the whole content of the file ' +
        '`nix-store --generate-binary-cache-key NAME secret.key public.key` writes (`NAME:base64`), from a secret'
    )
  }
  return key
}

function parseTrustedKeys(value: string): TrustedKey[] {
  return value
    .split(/\s+/)
    .filter(Boolean)
    .map(k => {
      const key = parsePublicKey(k)
      if (!key) {
        throw new InputError(
          `Input \`trusted-public-keys\`: \`${k.slice(0, 100)}\` is not a Nix public key ` +
            '(`NAME:base64` of 32 bytes, as in public.key or nix.conf)'
        )
      }
      return key
    })
}

function parseS3(get: (name: string) => string, env: NodeJS.ProcessEnv): S3Config {
  const bucket = get('s3-bucket')
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new InputError(
      bucket
        ? `Input \`s3-bucket\`: \`${bucket}\` is not an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)`
        : 'Input `s3-bucket` is empty: `backend: s3` needs the bucket to keep the cache in'
    )
  }
  const prefix = get('s3-prefix') || 'nix-store-cache/'
  if (prefix.length > 256 || [...prefix].some(c => c.charCodeAt(0) < 32)) {
    throw new InputError('Input `s3-prefix`: at most 256 characters, no control characters')
  }
  const endpoint = get('s3-endpoint')
  if (endpoint && !/^https?:\/\/[^\s/]+(\/.*)?$/.test(endpoint)) {
    throw new InputError(
      `Input \`s3-endpoint\`: \`${endpoint}\` is not a URL like \`https://s3.example.com\`; leave it empty for AWS`
    )
  }
  return {
    bucket,
    prefix,
    endpoint,
    // A region the SDK needs even where the store ignores it (Ceph, MinIO).
    region: get('s3-region') || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    forcePathStyle: parseBool(get('s3-force-path-style') || 'false', 's3-force-path-style')
  }
}

function parseRetention(get: (name: string) => string): Retention {
  const keep = get('keep-snapshots') || '2'
  if (!/^\d{1,6}$/.test(keep) || Number(keep) < 1) {
    throw new InputError(
      `Input \`keep-snapshots\`: \`${keep}\` is not a whole number of at least 1 (the newest snapshots kept per dependency set)`
    )
  }
  const maxSize = get('max-size')
  return {
    prune: parseBool(get('prune') || 'false', 'prune'),
    keepSnapshots: Number(keep),
    maxAgeMs: parseDuration(get('max-age') || '30d', 'max-age'),
    ...(maxSize ? { maxSizeBytes: parseSize(maxSize, 'max-size') } : {}),
    graceMs: parseDuration(get('grace') || '1h', 'grace'),
    dryRun: parseBool(get('dry-run') || 'false', 'dry-run')
  }
}

const UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `0`, `90s`, `45m`, `1h`, `7d`. */
export function parseDuration(value: string, name: string): number {
  const m = /^(\d{1,9})([smhd])?$/.exec(value)
  if (!m || (m[2] === undefined && m[1] !== '0')) {
    throw new InputError(
      `Input \`${name}\`: \`${value}\` is not a duration: a number with s, m, h or d (\`45m\`, \`1h\`, \`7d\`), or \`0\``
    )
  }
  return Number(m[1]) * (m[2] ? UNITS_MS[m[2]]! : 0)
}

function parseStallTimeout(value: string): number {
  const ms = parseDuration(value, 'stall-timeout')
  if (ms === 0)
    throw new InputError('Input `stall-timeout` must be longer than 0, like `30s` or `1m`')
  return ms
}

/** `500M`, `10G`, `2048K` (powers of 1024), or bytes. */
export function parseSize(value: string, name: string): number {
  const m = /^(\d{1,15})([KMGT])?$/i.exec(value)
  if (!m) {
    throw new InputError(
      `Input \`${name}\`: \`${value}\` is not a size: a number of bytes, or with K, M, G or T (powers of 1024), like \`10G\``
    )
  }
  const power = m[2] ? 'KMGT'.indexOf(m[2].toUpperCase()) + 1 : 0
  return Number(m[1]) * 1024 ** power
}

function parseBackend(value: string, env: NodeJS.ProcessEnv): BackendName {
  const v = oneOf(value, 'backend', ['auto', 'local', 'github', 's3'] as const)
  if (v !== 'auto') return v
  return env.GITHUB_ACTIONS === 'true' ? 'github' : 'local'
}

function parseBool(value: string, name: string): boolean {
  const v = value.toLowerCase()
  if (v === 'true') return true
  if (v === 'false') return false
  throw new InputError(`Input \`${name}\`: \`${value}\` is not \`true\` or \`false\``)
}

function oneOf<T extends string>(value: string, name: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new InputError(
    `Input \`${name}\`: \`${value}\` is not one of ${allowed.map(a => `\`${a}\``).join(', ')}`
  )
}

function parseVersion(value: string): string {
  if (!/^v\d{3}$/.test(value)) {
    throw new InputError(
      `Input \`nix-portable-version\`: \`${value}\` is not a release tag like \`v012\``
    )
  }
  return value
}

function absolute(path: string, name: string): string {
  if (path.includes('\n'))
    throw new InputError(`Input \`${name}\`: a path cannot contain a newline`)
  return isAbsolute(path) ? path : resolve(path)
}
