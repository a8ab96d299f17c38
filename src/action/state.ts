// State between main and post (STYLE.md: one typed JSON value), and between the
// restore and save sub-actions. The value lists every restored path, which can
// be far larger than an environment variable may be (the runner hands state to
// the post step as STATE_* variables, and Linux caps each at 128 KiB): so it is
// a file in RUNNER_TEMP, and only its path travels in the state or the env.
import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseState, type CacheState } from '../snapshot/context.js'

const STATE = 'state-file'
export const STATE_FILE_ENV = 'NIX_STORE_CACHE_STATE_FILE'

export interface ActionState {
  cache: CacheState
  nixPortable: string
}

export function parseActionState(data: unknown): ActionState | undefined {
  if (typeof data !== 'object' || data === null) return undefined
  const o = data as Record<string, unknown>
  if (typeof o.nixPortable !== 'string') return undefined
  return { cache: parseState(o.cache), nixPortable: o.nixPortable }
}

/** main: for its own post step; restore: for a later save step. */
export async function keepState(state: ActionState, mode: 'main' | 'restore'): Promise<void> {
  const dir = join(process.env.RUNNER_TEMP || '/tmp', 'nix-store-cache')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `state-${randomBytes(6).toString('hex')}.json`)
  await writeFile(file, JSON.stringify(state))
  if (mode === 'main') core.saveState(STATE, file)
  else core.exportVariable(STATE_FILE_ENV, file)
}

/** post: what its main step kept; save: what a restore step kept, if any. */
export async function loadState(mode: 'post' | 'save'): Promise<ActionState | undefined> {
  const file = mode === 'post' ? core.getState(STATE) : process.env[STATE_FILE_ENV]
  if (!file || !existsSync(file)) return undefined
  return parseActionState(JSON.parse(await readFile(file, 'utf8')))
}
