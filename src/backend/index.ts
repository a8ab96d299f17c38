import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { GithubBackend } from './github.js'
import { LocalBackend } from './local.js'
import type { Backend } from './types.js'

export type { Backend, SaveOutcome } from './types.js'
export { GithubBackend, LocalBackend }

export interface BackendChoice {
  backend: 'local' | 'github'
  cacheDir: string
  location: string
  workspace: string
}

export function createBackend(c: BackendChoice): Backend {
  if (c.backend === 'github') return new GithubBackend(c.workspace)
  // Staged next to the store, so packs move into it by rename; one folder per
  // process, as jobs on one self-hosted machine may share a location.
  return new LocalBackend(
    c.cacheDir,
    join(c.location, '.nix-store-cache', `${process.pid}-${randomBytes(4).toString('hex')}`)
  )
}
