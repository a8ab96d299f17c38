// npm run bench:transfer — the transfer engine's two settings, measured where
// they matter: how many transfers run at once (WIDTH) and the size past which
// new paths go into several packs (MAX_PACK). The github backend through the
// test cache service over Azurite with bench:github's emulated link (100 ms
// round trip, 150 MB/s); one set `big` of about 256 MB of machine code in 32
// libraries. For each pack size a cold save into an empty cache, then restores
// with each width into fresh locations (medians of two); and saves with each
// width at the default pack size.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { restoreSnapshot } from '../src/snapshot/restore.js'
import { MAX_PACK, saveSnapshot } from '../src/snapshot/save.js'
import type { TransferShape } from '../src/snapshot/context.js'
import { WIDTH } from '../src/transfer/pool.js'
import { startCacheService, type CacheService } from '../test/rig/cache-service.js'
import { contextFor, type JobOptions } from '../test/rig/jobs.js'
import { nixOk, type World } from '../test/rig/world.js'
import { bigSet, machineCode, median, seconds, worlds } from './common.js'

const MiB = 1024 * 1024
const LINK = { rttMs: 100, uploadBytesPerSecond: 150e6, downloadBytesPerSecond: 150e6 }
const PACK_MIB = [16, 32, 64, 128, 1024]
const WIDTHS = [1, 2, 4, 8]
const ROUNDS = 2

async function main(): Promise<void> {
  const { world, removeAll } = worlds()
  let service: CacheService | undefined
  try {
    const setup = await world()
    const dir = join(setup.root, 'nixpkgs')
    mkdirSync(dir)
    const libs = machineCode(Array(32).fill(8 * MiB), '4M')
    writeFileSync(join(dir, 'default.nix'), bigSet(join(setup.root, 'rig', 'nixpkgs'), libs, []))
    process.env.NIX_PATH = `nixpkgs=${dir}`
    const fresh = async (): Promise<World> => {
      const w = await world()
      w.env.NIX_PATH = process.env.NIX_PATH
      process.env.GITHUB_WORKSPACE = w.workspace
      process.env.RUNNER_TEMP = w.runnerTemp
      return w
    }
    const opts: JobOptions = { deps: 'big', backend: 'github', cacheDir: '' }
    const built = await fresh()
    await nixOk(built, ['nix-shell', '-p', 'big', '--run', 'true'])
    const cold = { version: 1 as const, watermark: 0, cacheHit: false }

    /** A cold save of `big` with `shape` into an empty cache; its seconds and packs. */
    const save = async (shape: TransferShape): Promise<{ s: number; packs: number }> => {
      await service?.stop()
      service = await startCacheService({ link: LINK })
      Object.assign(process.env, service.env)
      process.env.GITHUB_WORKSPACE = built.workspace
      const ctx = await contextFor(built, opts)
      ctx.transfer = shape
      const s = await seconds(() => saveSnapshot(ctx, cold))
      return { s, packs: service.entries().filter(e => e.key.includes('-pack-')).length }
    }
    const restore = async (shape: TransferShape): Promise<number> => {
      const w = await fresh()
      const ctx = await contextFor(w, opts)
      ctx.transfer = shape
      return seconds(async () => {
        const r = await restoreSnapshot(ctx)
        if (!r.cacheHit) throw new Error('bench: the restore missed')
      })
    }

    const restores = new Map<string, number>()
    for (const mib of PACK_MIB) {
      const saved = await save({ width: WIDTH, packBytes: mib * MiB })
      const cells: string[] = []
      for (const width of WIDTHS) {
        const times: number[] = []
        for (let round = 0; round < ROUNDS; round++)
          times.push(await restore({ width, packBytes: mib * MiB }))
        restores.set(`${width}/${mib}`, median(times))
        cells.push(`width ${width} ${median(times).toFixed(2)} s`)
      }
      console.log(
        `  packs of ${mib} MiB (${saved.packs} packs, save ${saved.s.toFixed(2)} s): restore ${cells.join(', ')}`
      )
    }
    const saves = new Map<number, number>()
    for (const width of WIDTHS) {
      const times: number[] = []
      for (let round = 0; round < ROUNDS; round++)
        times.push((await save({ width, packBytes: MAX_PACK })).s)
      saves.set(width, median(times))
    }
    console.log(
      `  saves with packs of ${MAX_PACK / MiB} MiB: ${[...saves].map(([w, s]) => `width ${w} ${s.toFixed(2)} s`).join(', ')}`
    )
    console.log(
      `link: ${LINK.rttMs} ms round trip, ${LINK.uploadBytesPerSecond / 1e6} MB/s each way`
    )
    const [best, bestS] = [...restores].sort((a, b) => a[1] - b[1])[0]!
    const [bw, bm] = best.split('/')
    const ours = restores.get(`${WIDTH}/${MAX_PACK / MiB}`)!
    const [saveBest, saveBestS] = [...saves].sort((a, b) => a[1] - b[1])[0]!
    console.log(
      `transfer: fastest restore at width ${bw}, ${bm} MiB packs (${bestS.toFixed(2)} s); ` +
        `the defaults (width ${WIDTH}, ${MAX_PACK / MiB} MiB) ${(ours / bestS).toFixed(2)}x of it; ` +
        `fastest save at width ${saveBest}, width ${WIDTH} ${(saves.get(WIDTH)! / saveBestS).toFixed(2)}x of it`
    )
  } finally {
    await service?.stop()
    await removeAll()
  }
}

await main()
