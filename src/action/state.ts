// State between main and post (one typed JSON value, STYLE.md), and between the
// restore and save sub-actions (a file in RUNNER_TEMP, named in the environment).
import * as core from '@actions/core'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { parseState, type CacheState } from '../snapshot/context.js'

const STATE = 'nix-store-cache'
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

export function saveActionState(state: ActionState): void {
  core.saveState(STATE, JSON.stringify(state))
}

export function readActionState(): ActionState | undefined {
  const raw = core.getState(STATE)
  return raw ? parseActionState(JSON.parse(raw)) : undefined
}

/** For the save sub-action, which runs in another step than restore. */
export async function writeStateFile(state: ActionState): Promise<void> {
  const file = join(process.env.RUNNER_TEMP || '/tmp', 'nix-store-cache', 'state.json')
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, JSON.stringify(state))
  core.exportVariable(STATE_FILE_ENV, file)
}

export async function readStateFile(): Promise<ActionState | undefined> {
  const file = process.env[STATE_FILE_ENV]
  if (!file || !existsSync(file)) return undefined
  return parseActionState(JSON.parse(await readFile(file, 'utf8')))
}
