// What the benchmarks share: real machine code from this machine's /usr, and
// rig worlds removed at the end.
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { makeWorld, removeWorld, type World } from '../test/rig/world.js'

function isElf(file: string): boolean {
  const fd = openSync(file, 'r')
  try {
    const b = Buffer.alloc(4)
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === '\x7fELF'
  } finally {
    closeSync(fd)
  }
}

/**
 * ELF files from /usr (never following links, each under `maxSize`, e.g.
 * `16M`), in groups of about the given bytes each, in name order.
 */
export function machineCode(sizes: readonly number[], maxSize: string): string[][] {
  const found = execFileSync(
    'find',
    ['/usr/lib', '/usr/libexec', '/usr/bin', '-type', 'f', '-size', '+16k', '-size', `-${maxSize}`],
    { maxBuffer: 64 * 1024 * 1024 }
  )
  const groups: string[][] = sizes.map(() => [])
  let g = 0
  let total = 0
  for (const f of found.toString().split('\n').sort()) {
    if (g >= sizes.length) break
    if (!f || /[\s"'$`\\]/.test(f) || !isElf(f)) continue
    groups[g]!.push(f)
    total += statSync(f).size
    if (total >= sizes[g]!) {
      g++
      total = 0
    }
  }
  return groups
}

/** Worlds made for a benchmark, all removed by `removeAll`. */
export function worlds(): { world: () => Promise<World>; removeAll: () => Promise<void> } {
  const made: World[] = []
  return {
    world: async () => {
      const w = await makeWorld()
      made.push(w)
      return w
    },
    removeAll: async () => {
      for (const w of made) await removeWorld(w)
    }
  }
}

export const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/**
 * How long `f` takes, in seconds. Each measurement starts with no dirty pages
 * left by the one before it, or it would pay for the previous one's writeback.
 */
export async function seconds(f: () => Promise<unknown>): Promise<number> {
  execFileSync('sync')
  const t = performance.now()
  await f()
  return (performance.now() - t) / 1000
}
