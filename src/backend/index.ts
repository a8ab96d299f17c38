import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { GithubBackend } from './github.js'
import type { S3Config } from '../config.js'
import { LocalBackend } from './local.js'
import { S3Backend } from './s3.js'
import type { Backend } from './types.js'

export type { Backend, SaveOutcome } from './types.js'
export { GithubBackend, LocalBackend, S3Backend }

export interface BackendChoice {
  backend: 'local' | 'github' | 's3'
  cacheDir: string
  location: string
  workspace: string
  s3?: S3Config
  /** A transfer's time past its bytes at 1 MiB/s before it is given up (Config.stallMs). */
  stallMs: number
  token?: string
  repository?: string
  ref?: string
}

export function createBackend(c: BackendChoice): Backend {
  if (c.backend === 'github') {
    const access = { token: c.token ?? '', repository: c.repository ?? '', ref: c.ref ?? '' }
    return new GithubBackend(c.workspace, { stallMs: c.stallMs, access })
  }
  // Staged next to the store, so packs move into it by rename; one folder per
  // process, as jobs on one self-hosted machine may share a location.
  const stage = join(
    c.location,
    '.nix-store-cache',
    `${process.pid}-${randomBytes(4).toString('hex')}`
  )
  if (c.backend === 's3') {
    if (!c.s3) throw new Error('internal: backend s3 without its configuration')
    return new S3Backend(c.s3, stage, c.stallMs)
  }
  return new LocalBackend(c.cacheDir, stage)
}
