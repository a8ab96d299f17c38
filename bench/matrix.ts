// npm run bench:matrix — a matrix of four dependency sets sharing a 40 MB base
// (15 MB of machine code each on top, copied from this machine's /usr), local
// backend, every job a fresh location: two rounds of the four, then a
// combination never run before. Prints each job's bytes restored beside its
// closure's (NAR bytes), the cache's live bytes (what the newest snapshot of
// each set and the newest index entry of each attribute name) beside the
// compressed union of every closure, the whole cache after a prune beside the
// same union, and what one more pack costs a restore
// (the figure MIN_PACK comes from).
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NixDb } from '../src/db/index.js'
import { depsPrefix, packagePrefix, SHELL } from '../src/keys.js'
import { findRoots } from '../src/packages/roots.js'
import { prune } from '../src/retention/prune.js'
import { MIN_PACK } from '../src/snapshot/save.js'
import { readEntry, writeEntry } from '../src/snapshot/entries.js'
import { MANIFEST_FORMAT, type PackRef } from '../src/snapshot/manifest.js'
import { restoreSnapshot } from '../src/snapshot/restore.js'
import { uploadPack } from '../src/snapshot/upload.js'
import { contextFor, job, type JobOptions } from '../test/rig/jobs.js'
import { dbFile, nixOk, storeDir, type World } from '../test/rig/world.js'
import { machineCode, worlds } from './common.js'

const MB = 1024 * 1024
const SETS = ['p1', 'p2', 'p3', 'p4']
const COMBINATION = 'p1 p3'

/** The rig's package set plus `base` and p1…p4, each of which refers to base. */
function nixpkgs(rigNixpkgs: string, files: string[][]): string {
  const [base, ...own] = files
  const copy = (list: string[]): string =>
    `n=0; mkdir -p $out/lib; for f in ${list.join(' ')}; do n=$((n+1)); cp $f $out/lib/$n-$(basename $f); done`
  const mk = (name: string, script: string): string => `derivation {
    name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" ''PATH=/usr/bin:/bin; set -e; ${script}'' ];
  }`
  const sets = own.map(
    (list, i) => `p${i + 1} = ${mk(`p${i + 1}-1.0`, `${copy(list)}; echo \${base} > $out/base`)};`
  )
  return `{ ... }: let rig = import ${rigNixpkgs} { }; in rig // rec {
    base = ${mk('base-1.0', copy(base!))};
    ${sets.join('\n    ')}
  }`
}

async function main(): Promise<void> {
  const { world, removeAll } = worlds()
  try {
    const setup = await world()
    const dir = join(setup.root, 'nixpkgs')
    mkdirSync(dir)
    const files = machineCode([40 * MB, ...SETS.map(() => 15 * MB)], '8M')
    writeFileSync(join(dir, 'default.nix'), nixpkgs(join(setup.root, 'rig', 'nixpkgs'), files))
    process.env.NIX_PATH = `nixpkgs=${dir}`
    const cacheDir = join(setup.root, 'cache')
    const opts = (deps: string): JobOptions => ({ deps, backend: 'local', cacheDir })

    const closureBytes = async (w: World, deps: string): Promise<number> => {
      const np = { nixPortable: w.launcher, location: w.location, runtime: 'bwrap' }
      const roots = await findRoots(np, deps.split(' '), storeDir(w))
      const all = [...roots.shell, ...[...roots.attrs.values()].flat()]
      return NixDb.with(dbFile(w), { readonly: true }, db =>
        [...db.narSizes(db.closure(all)).values()].reduce((a, b) => a + b, 0)
      )
    }
    let worst = 0
    let comboBuilds = -1
    const rows: string[] = []
    const plan = [
      ...SETS.map(s => ({ deps: s, round: 1 })),
      ...SETS.map(s => ({ deps: s, round: 2 })),
      { deps: COMBINATION, round: 3 }
    ]
    for (const step of plan) {
      const w = await world()
      w.env.NIX_PATH = process.env.NIX_PATH
      const t = performance.now()
      const r = await job(w, opts(step.deps))
      const seconds = (performance.now() - t) / 1000
      const closure = await closureBytes(w, step.deps)
      const ratio = r.restore.bytesRestored / closure
      if (step.round > 1) worst = Math.max(worst, ratio)
      if (step.round === 3) comboBuilds = r.builds
      rows.push(
        `  round ${step.round} ${step.deps.padEnd(6)}: restored ${(r.restore.bytesRestored / MB).toFixed(1)} MiB ` +
          `of a ${(closure / MB).toFixed(1)} MiB closure (${ratio.toFixed(2)}x) from ${r.restore.source}, ` +
          `${r.builds} builds, job ${seconds.toFixed(1)} s`
      )
      console.log(rows.at(-1))
    }

    // Live: the newest snapshot of each set, the newest index entry of each attribute.
    const ctx = await contextFor(setup, opts(SETS[0]!))
    const live = new Map<string, PackRef>()
    const sets = [...SETS, COMBINATION]
    const prefixes = [
      ...sets.map(s => depsPrefix({ ...ctx.keys, dependencies: s.split(' ').sort() })),
      ...[SHELL, ...SETS].map(a => packagePrefix(ctx.keys, a))
    ]
    for (const prefix of prefixes) {
      const e = await readEntry(ctx, prefix)
      for (const p of e?.manifest.packs ?? []) live.set(p.key, p)
    }
    const size = (key: string): number => statSync(join(cacheDir, `${key}.tar.zst`)).size
    const liveBytes = [...live.keys()].reduce((n, k) => n + size(k), 0)
    const allBytes = readdirSync(cacheDir)
      .filter(f => f.endsWith('.tar.zst'))
      .reduce((n, f) => n + statSync(join(cacheDir, f)).size, 0)

    // The union of every closure, compressed the plain way, from one location holding it all.
    const all = await world()
    all.env.NIX_PATH = process.env.NIX_PATH
    await nixOk(all, ['nix-shell', '-p', ...SETS, '--run', 'true'])
    const np = { nixPortable: all.launcher, location: all.location, runtime: 'bwrap' }
    const roots = await findRoots(np, SETS, storeDir(all))
    const union = NixDb.with(dbFile(all), { readonly: true }, db =>
      db.closure([...roots.shell, ...[...roots.attrs.values()].flat()])
    )
    const list = join(all.root, 'union.txt')
    writeFileSync(list, union.map(p => p.slice('/nix/store/'.length)).join('\n'))
    const unionBytes = Number(
      execFileSync('bash', [
        '-c',
        'tar -c -C "$1" -T "$2" | zstd -T0 -3 -q -c | wc -c',
        '_',
        storeDir(all),
        list
      ]).toString()
    )

    // Prune with the defaults (keep 2 snapshots a set, 30 days), but no grace
    // period: everything here is minutes old.
    await prune(ctx.backend, ctx.log, {
      keepSnapshots: 2,
      maxAgeMs: 30 * 86_400_000,
      graceMs: 0,
      dryRun: false
    })
    const prunedBytes = (await ctx.backend.list()).reduce((n, s) => n + s.bytes, 0)
    console.log(
      `after prune: ${(prunedBytes / MB).toFixed(1)} MiB in the cache (was ${(allBytes / MB).toFixed(1)} MiB), ` +
        `${(prunedBytes / unionBytes).toFixed(2)}x of the union of closures`
    )

    const perPack = await packCost(world, all, union)
    console.log(
      `cache: live ${(liveBytes / MB).toFixed(1)} MiB in ${live.size} packs, all entries ${(allBytes / MB).toFixed(1)} MiB; ` +
        `union of closures ${(unionBytes / MB).toFixed(1)} MiB (tar | zstd -3)`
    )
    console.log(
      `one more pack costs a restore ${(perPack.seconds * 1000).toFixed(0)} ms, ` +
        `${(perPack.bytes / MB).toFixed(1)} MiB at this restore's ${(perPack.rate / MB).toFixed(0)} MiB/s; ` +
        `MIN_PACK is ${(MIN_PACK / MB).toFixed(1)} MiB`
    )
    console.log(
      `matrix: worst restore ${worst.toFixed(2)}x of closure, new combination ${comboBuilds} builds, ` +
        `live cache ${(liveBytes / unionBytes).toFixed(2)}x of union, ` +
        `pruned cache ${(prunedBytes / unionBytes).toFixed(2)}x of union`
    )
  } finally {
    await removeAll()
  }
}

/**
 * The cost of one more pack in a restore: eight one-path packs against one pack
 * of the same eight paths, each restored five times into fresh locations (medians),
 * beside this machine's restore rate for the union (MB/s).
 */
async function packCost(
  world: () => Promise<World>,
  src: World,
  union: string[]
): Promise<{ seconds: number; bytes: number; rate: number }> {
  const cacheDir = join(src.root, 'pack-cost')
  const fillers = Array.from({ length: 8 }, (_, i) => ['-A', `filler${i + 1}`]).flat()
  const small = (await nixOk(src, ['nix-build', '<nixpkgs>', ...fillers, '--no-out-link']))
    .trim()
    .split('\n')
  const publishAs = async (deps: string, groups: string[][]): Promise<void> => {
    const c = await contextFor(src, { deps, backend: 'local', cacheDir })
    const packs: PackRef[] = []
    for (const g of groups) packs.push((await uploadPack(c, [], g, new Set())).ref)
    const key = `${depsPrefix(c.keys)}x-1`
    await writeEntry(c, [], 'snapshot', key, { format: MANIFEST_FORMAT, packs, createdAt: '' })
  }
  await publishAs(
    'many',
    small.map(p => [p])
  )
  await publishAs('one', [small])
  await publishAs('everything', [union])
  const time = async (deps: string): Promise<number> => {
    const w = await world()
    const c = await contextFor(w, { deps, backend: 'local', cacheDir })
    execFileSync('sync')
    const t = performance.now()
    await restoreSnapshot(c)
    return (performance.now() - t) / 1000
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const many: number[] = []
  const one: number[] = []
  for (let i = 0; i < 5; i++) {
    many.push(await time('many'))
    one.push(await time('one'))
  }
  const seconds = Math.max(0, (median(many) - median(one)) / (small.length - 1))
  const unionBytes = NixDb.with(dbFile(src), { readonly: true }, db =>
    [...db.narSizes(union).values()].reduce((a, b) => a + b, 0)
  )
  const rate = unionBytes / (await time('everything'))
  return { seconds, bytes: seconds * rate, rate }
}

await main()
