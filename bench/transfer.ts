// npm run bench:transfer — the github backend's transfer shape (DISTANT in
// src/transfer/pool.ts), measured where it matters: how many packs travel at
// once, the size past which new paths go into several packs, and whether a
// large group is split towards the width. Through the test cache service over
// Azurite with bench:github's emulated link (100 ms round trip, 150 MB/s); one
// set `big` of about 256 MB of machine code in 32 libraries. For each shape a
// cold save into an empty cache, then restores into fresh locations (median
// of two).
import { restoreSnapshot } from '../src/snapshot/restore.js'
import { saveSnapshot } from '../src/snapshot/save.js'
import { DISTANT, type TransferShape } from '../src/transfer/pool.js'
import { startCacheService, type CacheService } from '../test/rig/cache-service.js'
import { contextFor, type JobOptions } from '../test/rig/jobs.js'
import { nixOk } from '../test/rig/world.js'
import { benchWorlds, machineCode, median, seconds, worlds } from './common.js'

const MiB = 1024 * 1024
const LINK = { rttMs: 100, uploadBytesPerSecond: 150e6, downloadBytesPerSecond: 150e6 }
const PACK_MIB = [16, 32, 64, 128, 1024]
const WIDTHS = [1, 2, 4, 8]
const ROUNDS = 2

async function main(): Promise<void> {
  const { world, removeAll } = worlds()
  let service: CacheService | undefined
  try {
    const fresh = await benchWorlds(world, machineCode(Array(32).fill(8 * MiB), '4M'), [])
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
    const saves = new Map<string, number>()
    const measure = async (shape: TransferShape): Promise<string> => {
      const saved = await save(shape)
      const times: number[] = []
      for (let round = 0; round < ROUNDS; round++) times.push(await restore(shape))
      const name = `width ${shape.width}, ${shape.packBytes / MiB} MiB packs, parts ${shape.parts}`
      restores.set(name, median(times))
      saves.set(name, saved.s)
      return `width ${shape.width}: ${saved.packs} packs, save ${saved.s.toFixed(2)} s, restore ${median(times).toFixed(2)} s`
    }
    for (const mib of PACK_MIB) {
      const cells: string[] = []
      for (const width of WIDTHS)
        cells.push(await measure({ width, packBytes: mib * MiB, parts: width }))
      console.log(`  packs of at most ${mib} MiB, split towards the width: ${cells.join('; ')}`)
    }
    const unsplit = { ...DISTANT, parts: 1 }
    console.log(`  DISTANT unsplit: ${await measure(unsplit)}`)
    console.log(
      `link: ${LINK.rttMs} ms round trip, ${LINK.uploadBytesPerSecond / 1e6} MB/s each way`
    )
    const fastest = (m: Map<string, number>): [string, number] =>
      [...m].sort((a, b) => a[1] - b[1])[0]!
    const [best, bestS] = fastest(restores)
    const [saveBest, saveBestS] = fastest(saves)
    const ours = `width ${DISTANT.width}, ${DISTANT.packBytes / MiB} MiB packs, parts ${DISTANT.parts}`
    console.log(
      `transfer: fastest restore at ${best} (${bestS.toFixed(2)} s), fastest save at ${saveBest} (${saveBestS.toFixed(2)} s); ` +
        `github's shape (${ours}) restores in ${(restores.get(ours)! / bestS).toFixed(2)}x and saves in ${(saves.get(ours)! / saveBestS).toFixed(2)}x of them`
    )
  } finally {
    await service?.stop()
    await removeAll()
  }
}

await main()
