// npm run bench:github — the github backend beside what a user would otherwise
// write, plain @actions/cache of the whole .nix-portable folder, in one run,
// through the test cache service over Azurite with an emulated runner link
// (100 ms round trip, 150 MB/s each way). A store of about 260 MB of machine
// code from this machine's /usr: one set `big` (one job's save: a program and
// eight libraries), and eight jobs that each add a package (`a1`, then `a1 a2`,
// …: an eight-pack snapshot).
// Every restore is into a fresh location; times are medians of five, ours and
// plain @actions/cache taking turns at going first. Core-seconds beside each:
// `rest` is the rig's (Azurite and the link proxy serve every byte on the same
// two cores, where a runner has GitHub's servers do it).
import * as cache from '@actions/cache'
import { join } from 'node:path'
import { describePhases } from '../src/report-text.js'
import { restoreSnapshot } from '../src/snapshot/restore.js'
import { saveSnapshot } from '../src/snapshot/save.js'
import { startCacheService, type CacheService } from '../test/rig/cache-service.js'
import { contextFor, job, type JobOptions } from '../test/rig/jobs.js'
import { nixOk, type World } from '../test/rig/world.js'
import {
  benchWorlds,
  floorText,
  inTurn,
  lastText,
  machineCode,
  measured,
  median,
  medianText,
  worlds,
  type Cores
} from './common.js'

const MB = 1024 * 1024
const LINK = { rttMs: 100, uploadBytesPerSecond: 150e6, downloadBytesPerSecond: 150e6 }
const ROUNDS = 5

// @actions/cache's workflow commands (`::debug::`, `::add-mask::`: core.debug
// writes them whether or not a runner shows them) are for a runner's log; here
// they buried the figures under some 8000 lines.
const write = process.stdout.write.bind(process.stdout) as (...a: unknown[]) => boolean
process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
  (typeof chunk === 'string' && chunk.startsWith('::')) ||
  write(chunk, ...rest)) as typeof process.stdout.write

/**
 * Ours into `w`: @actions/cache extracts into GITHUB_WORKSPACE, which the plain
 * restore's own fresh world moved when it went first.
 */
function restoreIn(
  w: World,
  ctx: Parameters<typeof restoreSnapshot>[0]
): ReturnType<typeof restoreSnapshot> {
  process.env.GITHUB_WORKSPACE = w.workspace
  process.env.RUNNER_TEMP = w.runnerTemp
  return restoreSnapshot(ctx)
}

async function main(): Promise<void> {
  const { world, removeAll } = worlds()
  let service: CacheService | undefined
  const cwd = process.cwd()
  try {
    const code = machineCode(Array(16).fill(33 * MB), '16M')
    const fresh = await benchWorlds(world, code.slice(0, 8), code.slice(8))
    const opts = (deps: string): JobOptions => ({ deps, backend: 'github', cacheDir: '' })

    // Plain @actions/cache of the whole .nix-portable folder, as a user would write it.
    let plainKeys = 0
    const plainSave = async (
      w: World,
      times: number[] = [],
      cores: Cores = []
    ): Promise<{ s: number; key: string }> => {
      const key = `plain-${++plainKeys}`
      process.chdir(w.workspace)
      const s = await measured(times, cores, () =>
        cache.saveCache([join(w.location, '.nix-portable')], key)
      )
      return { s, key }
    }
    const plainRestore = async (
      from: World,
      key: string,
      times: number[],
      cores: Cores
    ): Promise<number> => {
      const w = await fresh()
      process.chdir(w.workspace)
      // The same path string as the save (paths outside the workspace are absolute).
      return measured(times, cores, () =>
        cache.restoreCache([join(from.location, '.nix-portable')], key)
      )
    }

    // One pack: a cold job for `big`, its save timed beside plain @actions/cache's.
    const saves: number[] = []
    const plainSaves: number[] = []
    const cores = {
      save: [] as Cores,
      plainSave: [] as Cores,
      r1: [] as Cores,
      plainR1: [] as Cores,
      r8: [] as Cores,
      plainR8: [] as Cores
    }
    let bigWorld: World | undefined
    let plainBigKey = ''
    for (let round = 0; round < ROUNDS; round++) {
      // An empty cache each round, so that every save uploads the whole store.
      await service?.stop()
      service = await startCacheService({ link: LINK })
      Object.assign(process.env, service.env)
      const w = await fresh()
      await nixOk(w, ['nix-shell', '-p', 'big', '--run', 'true'])
      const ctx = await contextFor(w, opts('big'))
      const cold = { version: 1 as const, watermark: 0, cacheHit: false }
      let sr: Awaited<ReturnType<typeof saveSnapshot>> | undefined
      let p: { s: number; key: string } | undefined
      await inTurn(
        round % 2 === 0,
        async () =>
          void (await measured(
            saves,
            cores.save,
            async () => (sr = await saveSnapshot(ctx, cold))
          )),
        async () => void (p = await plainSave(w, plainSaves, cores.plainSave))
      )
      console.log(`  round ${round + 1} save phases: ${describePhases(sr!.phases)}`)
      bigWorld = w
      plainBigKey = p!.key
      console.log(
        `  round ${round + 1} save: ours ${lastText(saves, cores.save)}, @actions/cache ${lastText(plainSaves, cores.plainSave)}`
      )
    }
    const r1: number[] = []
    const plainR1: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const w = await fresh()
      const ctx = await contextFor(w, opts('big'))
      let r: Awaited<ReturnType<typeof restoreSnapshot>> | undefined
      await inTurn(
        round % 2 === 0,
        async () => void (await measured(r1, cores.r1, async () => (r = await restoreIn(w, ctx)))),
        async () => void (await plainRestore(bigWorld!, plainBigKey, plainR1, cores.plainR1))
      )
      console.log(
        `  round ${round + 1} restore, ${r!.packsFetched} pack(s): ours ${lastText(r1, cores.r1)}: ${describePhases(r!.phases)}; @actions/cache ${lastText(plainR1, cores.plainR1)}`
      )
    }

    // Eight packs: eight jobs, each adding a package.
    let last: World | undefined
    for (let i = 1; i <= 8; i++) {
      const deps = Array.from({ length: i }, (_, k) => `a${k + 1}`).join(' ')
      last = await fresh()
      await job(last, opts(deps))
    }
    const all = Array.from({ length: 8 }, (_, k) => `a${k + 1}`).join(' ')
    const plainEight = await plainSave(last!)
    const r8: number[] = []
    const plainR8: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const w = await fresh()
      const ctx = await contextFor(w, opts(all))
      let r: Awaited<ReturnType<typeof restoreSnapshot>> | undefined
      await inTurn(
        round % 2 === 0,
        async () => void (await measured(r8, cores.r8, async () => (r = await restoreIn(w, ctx)))),
        async () => void (await plainRestore(last!, plainEight.key, plainR8, cores.plainR8))
      )
      console.log(
        `  round ${round + 1} restore, ${r!.packsFetched} pack(s): ours ${lastText(r8, cores.r8)}: ${describePhases(r!.phases)}; @actions/cache ${lastText(plainR8, cores.plainR8)}`
      )
    }
    const s = median(saves) / median(plainSaves)
    const one = median(r1) / median(plainR1)
    const many = median(r8) / median(plainR8)
    console.log(
      `  medians: save: ours ${medianText(saves, cores.save)}, @actions/cache ${medianText(plainSaves, cores.plainSave)}`
    )
    console.log(
      `  restore (1 pack): ours ${medianText(r1, cores.r1)}, @actions/cache ${medianText(plainR1, cores.plainR1)}`
    )
    console.log(
      `  restore (8 packs): ours ${medianText(r8, cores.r8)}, @actions/cache ${medianText(plainR8, cores.plainR8)}`
    )
    console.log(
      `  ours at best: save ${floorText(cores.save, plainSaves)}, restore ${floorText(cores.r1, plainR1)} (1 pack), ${floorText(cores.r8, plainR8)} (8 packs)`
    )
    console.log(
      `link: ${LINK.rttMs} ms round trip, ${LINK.uploadBytesPerSecond / 1e6} MB/s each way`
    )
    console.log(
      `github: save ${s.toFixed(2)}x, restore ${one.toFixed(2)}x (1 pack), ${many.toFixed(2)}x (8 packs) of @actions/cache`
    )
  } finally {
    process.chdir(cwd)
    await service?.stop()
    await removeAll()
  }
}

await main()
