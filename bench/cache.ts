// npm run bench:cache — the local backend's restore and save of a store of real
// machine code (about 320 MB in 300 paths, copied from this machine's /usr),
// next to plain `tar -c | zstd -T0` and `zstd -d -T0 | tar -x` of the same paths
// measured in the same run (median of 7 rounds, alternating which goes first,
// every restore into a fresh folder, sync between measurements); then the bytes
// a one-package delta writes and the time of a save with nothing new.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Phase } from '../src/log.js'
import { describePhases } from '../src/report-text.js'
import { restoreSnapshot } from '../src/snapshot/restore.js'
import { saveSnapshot } from '../src/snapshot/save.js'
import type { CacheState } from '../src/snapshot/context.js'
import { startCeph } from '../test/rig/ceph.js'
import { contextFor, type JobOptions } from '../test/rig/jobs.js'
import { fileBaseline, s3Baseline, type Baseline } from './baseline.js'
import { nixOk, storeDir, type World } from '../test/rig/world.js'
import {
  floorText,
  inTurn,
  lastText,
  machineCode,
  measured,
  median,
  medianText,
  seconds,
  worlds,
  type Cores
} from './common.js'

const TARGET = 320 * 1024 * 1024
const PACKAGES = 300
const ROUNDS = Number(process.env.ROUNDS ?? 7)

/** ELF files from /usr, up to TARGET bytes. */
function machineCodeFiles(): string[] {
  return machineCode([TARGET], '16M')[0]!
}

function nixFile(files: string[]): string {
  const groups: string[][] = Array.from({ length: PACKAGES }, () => [])
  files.forEach((f, i) => groups[i % PACKAGES]!.push(f))
  const drvs = groups.map((g, i) => `(mk "${i}" "${g.join(' ')}")`)
  return `let mk = i: files: derivation {
    name = "bench-pkg-\${i}"; system = builtins.currentSystem; builder = "/bin/sh"; inherit files;
    args = [ "-c" "PATH=/usr/bin:/bin; set -e; n=0; mkdir -p $out/lib; for f in $files; do n=$((n+1)); cp $f $out/lib/$n-$(basename $f); done" ];
  }; in [ ${drvs.join('\n')} ]`
}

const results = new Map<string, { r: number; s: number; deltaBytes: number }>()

/**
 * Save and restore on one backend beside `baseline`, ROUNDS times, then a
 * one-package delta and a save with nothing new. Prints its figures.
 */
async function measure(
  world: () => Promise<World>,
  src: World,
  pathCount: number,
  list: string,
  backend: 'local' | 's3',
  baseline: Baseline,
  inputs: Record<string, string>
): Promise<void> {
  console.log(`${backend}:`)
  const times = {
    tarC: [] as number[],
    ourSave: [] as number[],
    tarX: [] as number[],
    ourRestore: [] as number[]
  }
  // Busy core-seconds of the machine (the gateway's too) in each measurement.
  const cores = {
    tarC: [] as Cores,
    ourSave: [] as Cores,
    tarX: [] as Cores,
    ourRestore: [] as Cores
  }
  const timeOf = async (k: keyof typeof times, f: () => Promise<unknown>): Promise<void> => {
    await measured(times[k], cores[k], f)
  }
  const fig = (k: keyof typeof times): string =>
    times[k].length > 0 ? lastText(times[k], cores[k]) : 'next'
  let restoredState: CacheState | undefined
  let restoredWorld: World | undefined
  let opts: JobOptions | undefined
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so neither always runs on a cooler or warmer disk.
    const ourFirst = round % 2 === 1
    const name = `base-${round}.tar.zst`
    const baseSave = async (): Promise<void> => {
      await timeOf('tarC', () => baseline.save(storeDir(src), list, name))
    }
    // A cache of its own each round, so that every save writes everything.
    opts = {
      deps: 'bench',
      backend,
      cacheDir: join(src.root, `cache-${round}`),
      inputs: { ...inputs, 's3-prefix': `round-${round}/` }
    }
    const ctx = await contextFor(src, opts)
    const ourSave = async (): Promise<void> => {
      let report: Awaited<ReturnType<typeof saveSnapshot>> | undefined
      await timeOf('ourSave', async () => {
        report = await saveSnapshot(ctx, { version: 1, watermark: 0, cacheHit: false })
      })
      console.log(
        `  round ${round + 1} save: ${fig('ourSave')}: ${describePhases(report!.phases)} (tar -c | zstd: ${fig('tarC')})`
      )
    }
    await inTurn(ourFirst, ourSave, baseSave)

    const fresh = join((await world()).root, 'extract')
    mkdirSync(fresh)
    const baseRestore = async (): Promise<void> => {
      await timeOf('tarX', () => baseline.restore(name, fresh))
    }
    const dst = await world()
    const dctx = await contextFor(dst, opts)
    const ourRestore = async (): Promise<void> => {
      let restored = 0
      let lastPhases: Phase[] = []
      await timeOf('ourRestore', async () => {
        const r = await restoreSnapshot(dctx)
        restored = r.pathsRestored
        restoredState = r.state
        lastPhases = r.phases
      })
      console.log(
        `  round ${round + 1} restore: ${fig('ourRestore')}: ${describePhases(lastPhases)} (zstd -d | tar -x: ${fig('tarX')})`
      )
      if (restored < pathCount)
        throw new Error(`restored ${restored} paths, fewer than ${pathCount}`)
    }
    await inTurn(ourFirst, ourRestore, baseRestore)
    restoredWorld = dst
  }

  // One more package on top of the restored store, then a save with nothing new.
  const dst = restoredWorld!
  await nixOk(dst, ['nix-build', '<nixpkgs>', '-A', 'figlet', '--no-out-link'])
  const ctx = await contextFor(dst, opts!)
  const delta = await saveSnapshot(ctx, restoredState!)
  const after = await restoreSnapshot(ctx) // the state a later job would have
  const emptySave = await seconds(() => saveSnapshot(ctx, after.state))

  const r = median(times.ourRestore) / median(times.tarX)
  const s = median(times.ourSave) / median(times.tarC)
  console.log(
    `  tar -c | zstd -T0: ${medianText(times.tarC, cores.tarC)}; nix-store-cache save: ${medianText(times.ourSave, cores.ourSave)}`
  )
  console.log(
    `  zstd -d | tar -x: ${medianText(times.tarX, cores.tarX)}; nix-store-cache restore: ${medianText(times.ourRestore, cores.ourRestore)}`
  )
  console.log(
    `  ours at best: restore ${floorText(cores.ourRestore, times.tarX)}, save ${floorText(cores.ourSave, times.tarC)}`
  )
  console.log(
    `  delta: ${delta.pathsSaved} paths; save with nothing new: ${emptySave.toFixed(2)} s`
  )
  console.log(`${backend}: restore ${r.toFixed(2)}x, save ${s.toFixed(2)}x of tar+zstd`)
  results.set(backend, { r, s, deltaBytes: delta.archiveBytes ?? 0 })
}

async function main(): Promise<void> {
  const { world, removeAll } = worlds()
  try {
    const src = await world()
    const files = machineCodeFiles()
    writeFileSync(join(src.root, 'bench.nix'), nixFile(files))
    const paths = (await nixOk(src, ['nix-build', join(src.root, 'bench.nix'), '--no-out-link']))
      .trim()
      .split('\n')
    const names = paths.map(p => p.slice('/nix/store/'.length))
    const bytes = Number(
      execFileSync('du', ['-sb', '--apparent-size', ...names.map(n => join(storeDir(src), n))])
        .toString()
        .split('\n')
        .filter(Boolean)
        .reduce((n, l) => n + Number(l.split('\t')[0]), 0)
    )
    console.log(
      `store: ${paths.length} paths, ${(bytes / 1e6).toFixed(0)} MB of machine code (${files.length} ELF files)`
    )
    const list = join(src.root, 'names.txt')
    writeFileSync(list, names.join('\n'))

    // `npm run bench:cache -- local` (or `-- s3`): that backend alone.
    const only = process.argv[2]
    if (only !== 's3')
      await measure(world, src, paths.length, list, 'local', fileBaseline(src.root), {})
    const ceph = only === 'local' ? undefined : await startCeph()
    if (ceph)
      try {
        const bucket = await ceph.bucket('bench')
        Object.assign(process.env, ceph.env)
        const inputs = {
          's3-bucket': bucket,
          's3-endpoint': ceph.endpoint,
          's3-force-path-style': 'true'
        }
        await measure(
          world,
          src,
          paths.length,
          list,
          's3',
          s3Baseline(ceph.client(), bucket),
          inputs
        )
      } finally {
        await ceph.stop()
      }
    const local = results.get('local')
    if (local)
      console.log(
        `cache: restore ${local.r.toFixed(2)}x, save ${local.s.toFixed(2)}x of tar+zstd; delta ${local.deltaBytes} bytes`
      )
  } finally {
    await removeAll()
  }
}

await main()
