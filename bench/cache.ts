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
import { contextFor } from '../test/rig/jobs.js'
import { nixOk, storeDir, type World } from '../test/rig/world.js'
import { machineCode, worlds } from './common.js'

const TARGET = 320 * 1024 * 1024
const PACKAGES = 300
const ROUNDS = 7

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

// Each measurement starts with no dirty pages left by the one before it, or the
// next one would pay for the previous one's writeback.
function seconds(f: () => unknown): number {
  execFileSync('sync')
  const t = performance.now()
  f()
  return (performance.now() - t) / 1000
}
async function secondsAsync(f: () => Promise<unknown>): Promise<number> {
  execFileSync('sync')
  const t = performance.now()
  await f()
  return (performance.now() - t) / 1000
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

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

    const times = {
      tarC: [] as number[],
      ourSave: [] as number[],
      tarX: [] as number[],
      ourRestore: [] as number[]
    }
    let restoredState: CacheState | undefined
    let restoredWorld: World | undefined
    let cacheDir = ''
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always runs on a cooler or warmer disk.
      const ourFirst = round % 2 === 1
      const base = join(src.root, `base-${round}.tar.zst`)
      const baseSave = (): void => {
        times.tarC.push(
          seconds(() =>
            execFileSync('bash', [
              '-c',
              'tar -c -C "$1" -T "$2" | zstd -T0 -3 -q -o "$3"',
              '_',
              storeDir(src),
              list,
              base
            ])
          )
        )
      }
      cacheDir = join(src.root, `cache-${round}`)
      const ctx = await contextFor(src, { deps: 'bench', backend: 'local', cacheDir })
      const ourSave = async (): Promise<void> => {
        let report: Awaited<ReturnType<typeof saveSnapshot>> | undefined
        times.ourSave.push(
          await secondsAsync(async () => {
            report = await saveSnapshot(ctx, { version: 1, watermark: 0, cacheHit: false })
          })
        )
        console.log(
          `  round ${round + 1} save: ${describePhases(report!.phases)} (tar -c | zstd: ${times.tarC.at(-1)?.toFixed(2) ?? 'next'} s)`
        )
      }
      if (ourFirst) {
        await ourSave()
        baseSave()
      } else {
        baseSave()
        await ourSave()
      }

      const fresh = join((await world()).root, 'extract')
      mkdirSync(fresh)
      const baseRestore = (): void => {
        times.tarX.push(
          seconds(() =>
            execFileSync('bash', [
              '-c',
              'zstd -d -T0 -q -c "$1" | tar -x -C "$2"',
              '_',
              base,
              fresh
            ])
          )
        )
      }
      const dst = await world()
      const dctx = await contextFor(dst, { deps: 'bench', backend: 'local', cacheDir })
      const ourRestore = async (): Promise<void> => {
        let restored = 0
        let lastPhases: Phase[] = []
        times.ourRestore.push(
          await secondsAsync(async () => {
            const r = await restoreSnapshot(dctx)
            restored = r.pathsRestored
            restoredState = r.state
            lastPhases = r.phases
          })
        )
        console.log(
          `  round ${round + 1} restore: ${describePhases(lastPhases)} (zstd -d | tar -x: ${times.tarX.at(-1)?.toFixed(2) ?? 'next'} s)`
        )
        // Outputs and their .drv files.
        if (restored < paths.length)
          throw new Error(`restored ${restored} paths, fewer than ${paths.length}`)
      }
      if (ourFirst) {
        await ourRestore()
        baseRestore()
      } else {
        baseRestore()
        await ourRestore()
      }
      restoredWorld = dst
    }

    // One more package on top of the restored store, then a save with nothing new.
    const dst = restoredWorld!
    await nixOk(dst, ['nix-build', '<nixpkgs>', '-A', 'figlet', '--no-out-link'])
    const ctx = await contextFor(dst, { deps: 'bench', backend: 'local', cacheDir })
    const delta = await saveSnapshot(ctx, restoredState!)
    const deltaBytes = delta.archiveBytes ?? 0
    const after = await restoreSnapshot(ctx) // the state a later job would have
    const emptySave = await secondsAsync(() => saveSnapshot(ctx, after.state))

    const r = median(times.ourRestore) / median(times.tarX)
    const s = median(times.ourSave) / median(times.tarC)
    console.log(
      `tar -c | zstd -T0: ${median(times.tarC).toFixed(2)} s; nix-store-cache save: ${median(times.ourSave).toFixed(2)} s`
    )
    console.log(
      `zstd -d | tar -x: ${median(times.tarX).toFixed(2)} s; nix-store-cache restore: ${median(times.ourRestore).toFixed(2)} s`
    )
    console.log(
      `delta: ${delta.pathsSaved} paths; save with nothing new: ${emptySave.toFixed(2)} s`
    )
    console.log(
      `cache: restore ${r.toFixed(2)}x, save ${s.toFixed(2)}x of tar+zstd; delta ${deltaBytes} bytes`
    )
  } finally {
    await removeAll()
  }
}

await main()
