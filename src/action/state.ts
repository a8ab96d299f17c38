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

/** main: for its own post step; restore: for a later save step. */
export async function keepState(state: CacheState, mode: 'main' | 'restore'): Promise<void> {
  const dir = join(process.env.RUNNER_TEMP || '/tmp', 'nix-store-cache')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `state-${randomBytes(6).toString('hex')}.json`)
  await writeFile(file, JSON.stringify(state))
  if (mode === 'main') core.saveState(STATE, file)
  else core.exportVariable(STATE_FILE_ENV, file)
}

/** post: what its main step kept; save: what a restore step kept, if any. */
export async function loadState(mode: 'post' | 'save'): Promise<CacheState | undefined> {
  const file = mode === 'post' ? core.getState(STATE) : process.env[STATE_FILE_ENV]
  if (!file || !existsSync(file)) return undefined
  return parseState(JSON.parse(await readFile(file, 'utf8')))
}
