// Test rig: helpers over a world's real store, with nix itself as the oracle.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { nixOk, storeDir, type World } from './world.js'

const run = promisify(execFile)

/** Builds `<nixpkgs>` attributes in the world; returns their output paths. */
export async function build(
  world: World,
  attrs: string[],
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<string[]> {
  const args = ['nix-build', '<nixpkgs>', '--no-out-link', ...attrs.flatMap(a => ['-A', a])]
  return (await nixOk(world, args, extraEnv)).trim().split('\n')
}

export async function requisites(world: World, paths: string[]): Promise<string[]> {
  const out = await nixOk(world, ['nix-store', '-q', '--requisites', ...paths])
  return out.trim().split('\n').filter(Boolean).sort()
}

/** `nix-store --dump-db` registration blocks, one string per path, sorted. */
export async function dumpDb(world: World, paths: string[] = []): Promise<string[]> {
  const out = await nixOk(world, ['nix-store', '--dump-db', ...paths])
  const lines = out.trim().split('\n')
  const blocks: string[] = []
  let i = 0
  while (i < lines.length) {
    // path, hash, size, deriver, n, n references
    const n = Number(lines[i + 4])
    blocks.push(lines.slice(i, i + 5 + n).join('\n'))
    i += 5 + n
  }
  return blocks.sort()
}

/** Copies store folders (and .drv files) that `to` lacks from `from`, like moving a pack in. */
export async function copyStorePaths(from: World, to: World, paths: string[]): Promise<void> {
  for (const p of paths) {
    const name = p.slice('/nix/store/'.length)
    if (existsSync(join(storeDir(to), name))) continue
    await run('cp', ['-a', join(storeDir(from), name), join(storeDir(to), name)])
  }
}

export function storeNames(world: World): string[] {
  return readdirSync(storeDir(world))
    .filter(n => n !== '.links')
    .sort()
}
