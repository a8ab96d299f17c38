// What the benchmarks share: real machine code from this machine's /usr, and
// rig worlds removed at the end.
import { execFileSync } from 'node:child_process'
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync
} from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
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
 * left by the one before it, or it would pay for the previous one's writeback,
 * and on a quiet machine (quiet()).
 */
export async function seconds(f: () => Promise<unknown>): Promise<number> {
  execFileSync('sync')
  await quiet()
  const t = performance.now()
  const busy = busyCores()
  const [own, tools] = processCores()
  await f()
  const [own2, tools2] = processCores()
  cpu.last = busyCores() - busy
  cpu.own = own2 - own
  cpu.tools = tools2 - tools
  return (performance.now() - t) / 1000
}

/**
 * Core-seconds the whole machine was busy (every process, the rig's too) in the
 * last `seconds`, and the parts of it spent in this process (its threads too)
 * and in the programs it ran (tar, zstd, nix; the rest is the rig's servers).
 */
export const cpu = { last: 0, own: 0, tools: 0 }

export type Cores = (typeof cpu)[]

/** Each part's median. */
const medianCpu = (cs: Cores): typeof cpu => ({
  last: median(cs.map(c => c.last)),
  own: median(cs.map(c => c.own)),
  tools: median(cs.map(c => c.tools))
})

/** How long `f` takes, in seconds (pushed onto `times`); its core-seconds go onto `cores`. */
export async function measured(
  times: number[],
  cores: Cores,
  f: () => Promise<unknown>
): Promise<number> {
  const s = await seconds(f)
  times.push(s)
  cores.push({ ...cpu })
  return s
}

/** `2.03 s (3.61 cpu-s (node …))`: the last of `times` and of `cores`. */
export const lastText = (times: number[], cores: Cores): string =>
  `${times.at(-1)!.toFixed(2)} s (${cpuText(cores.at(-1)!)})`

/** The same, of the medians. */
export const medianText = (times: number[], cores: Cores): string =>
  `${median(times).toFixed(2)} s (${cpuText(medianCpu(cores))})`

/**
 * `floor 1.31x (2.62 cpu-s on 2 cores)`: the least `times`' median could be,
 * as a ratio of `base`'s median, had every core been busy with it all along
 * (the whole machine's core-seconds, the rig's servers' too, as they share
 * them). A target below it needs less work, not better scheduling.
 */
export function floorText(cores: Cores, base: number[]): string {
  const cpuS = medianCpu(cores).last
  const n = availableParallelism()
  return `floor ${(cpuS / n / median(base)).toFixed(2)}x (${cpuS.toFixed(2)} cpu-s on ${n} cores)`
}

/** `cpu` as `2.17 cpu-s (node 1.02, tools 0.80, rest 0.35)`. */
function cpuText(c: { last: number; own: number; tools: number }): string {
  const rest = c.last - c.own - c.tools
  return `${c.last.toFixed(2)} cpu-s (node ${c.own.toFixed(2)}, tools ${c.tools.toFixed(2)}, rest ${rest.toFixed(2)})`
}

/** This process's core-seconds and its reaped children's (/proc/self/stat). */
function processCores(): [number, number] {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  // Fields after the command name, which may hold spaces: utime is the 14th field.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number)
  return [(f[11]! + f[12]!) / 100, (f[13]! + f[14]!) / 100]
}

/**
 * Waits, up to 20 s, until the machine is all but idle (under a fifth of a
 * core busy over 250 ms): a Ceph gateway just started keeps both cores busy
 * for a while with work of its own (7-8 core-seconds in a save's 2-5 s, seen
 * as `rest`), which would land on whichever measurement runs then.
 */
async function quiet(): Promise<void> {
  const until = performance.now() + 20_000
  while (performance.now() < until) {
    const b = busyCores()
    await new Promise(resolve => setTimeout(resolve, 250))
    if (busyCores() - b < 0.05) return
  }
  console.log('  (the machine stayed busy for 20 s: measuring anyway)')
}

/** Busy core-seconds of the machine since boot (/proc/stat: all but idle and iowait). */
function busyCores(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  const n = ticks.map(Number)
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0)
  return (total - n[3]! - n[4]!) / 100 // USER_HZ
}

/**
 * Makes the rig's nixpkgs plus bigSet(parts, more) the NIX_PATH of this
 * process, and returns how to make a fresh world for a job of it (its
 * workspace and temp folder this process's GITHUB_WORKSPACE and RUNNER_TEMP).
 */
export async function benchWorlds(
  world: () => Promise<World>,
  parts: string[][],
  more: string[][]
): Promise<() => Promise<World>> {
  const setup = await world()
  const dir = join(setup.root, 'nixpkgs')
  mkdirSync(dir)
  writeFileSync(join(dir, 'default.nix'), bigSet(join(setup.root, 'rig', 'nixpkgs'), parts, more))
  process.env.NIX_PATH = `nixpkgs=${dir}`
  return async () => {
    const w = await world()
    w.env.NIX_PATH = process.env.NIX_PATH
    process.env.GITHUB_WORKSPACE = w.workspace
    process.env.RUNNER_TEMP = w.runnerTemp
    return w
  }
}

/**
 * A nixpkgs of the rig's, plus `big`: a program that refers to libraries
 * `lib1`… (each a store path holding one group of `parts`), and `a1`… (one
 * each of `more`).
 */
export function bigSet(rigNixpkgs: string, parts: string[][], more: string[][]): string {
  const copy = (list: string[]): string =>
    `n=0; mkdir -p $out/lib; for f in ${list.join(' ')}; do n=$((n+1)); cp $f $out/lib/$n-$(basename $f); done`
  const mk = (name: string, script: string): string => `derivation {
    name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" ''PATH=/usr/bin:/bin; set -e; ${script}'' ];
  }`
  const libs = parts.map((list, i) => `lib${i + 1} = ${mk(`big-lib${i + 1}-1.0`, copy(list))};`)
  const links = parts.map((_, i) => `ln -s \${lib${i + 1}} $out/lib${i + 1}`).join('; ')
  const as = more.map((list, i) => `a${i + 1} = ${mk(`a${i + 1}-1.0`, copy(list))};`)
  return `{ ... }: let rig = import ${rigNixpkgs} { }; in rig // rec {
    ${libs.join('\n    ')}
    big = ${mk('big-1.0', `mkdir -p $out; ${links}`)};
    ${as.join('\n    ')}
  }`
}

/** Ours then the baseline, or the other way round (alternate by round). */
export async function inTurn(
  ourFirst: boolean,
  ours: () => Promise<void>,
  base: () => Promise<void>
): Promise<void> {
  for (const f of ourFirst ? [ours, base] : [base, ours]) await f()
}
