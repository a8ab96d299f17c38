// Retention on real caches: real nix builds the sets, the CLI prunes as the
// world's user, on the local backend and on a Ceph gateway. Every kept snapshot
// must still restore with 0 builds (nix's --verify the oracle), and no entry
// left may name a pack that is gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBackend } from '../../src/backend/index.js'
import { classify } from '../../src/retention/classify.js'
import { readEntryFrom } from '../../src/snapshot/entries.js'
import { startCeph, type Ceph } from '../rig/ceph.js'
import { cli, job, jobConfig, type JobOptions } from '../rig/jobs.js'
import { makeWorld, nixPortable, removeWorld, type World } from '../rig/world.js'

describe.each(['local', 's3'] as const)('prune on the %s backend', backend => {
  const worlds: World[] = []
  let ceph: Ceph | undefined
  let bucket = ''
  let cacheDir = ''
  let key = ''

  async function fresh(unprivileged = false): Promise<World> {
    const w = await makeWorld({ unprivileged })
    worlds.push(w)
    return w
  }
  function opts(deps: string, inputs: Record<string, string> = {}): JobOptions {
    const s3: Record<string, string> = ceph
      ? { 's3-bucket': bucket, 's3-endpoint': ceph.endpoint, 's3-force-path-style': 'true' }
      : {}
    return { deps, backend, cacheDir, key, inputs: { ...s3, ...inputs } }
  }
  const env = (): Record<string, string> => ceph?.env ?? {}
  async function run(deps: string): Promise<{ w: World; builds: number }> {
    Object.assign(process.env, env())
    const w = await fresh()
    const r = await job(w, opts(deps))
    return { w, builds: r.builds }
  }
  async function pruneCli(flags: Record<string, string>): Promise<string> {
    const w = await fresh(true)
    const r = await cli(w, 'prune', opts('', flags), env())
    expect(r.code, r.stdout + r.stderr).toBe(0)
    return r.stdout + r.stderr
  }
  /** Our entries in the cache, by key. */
  async function listing(): Promise<Map<string, number>> {
    const w = worlds[0]!
    const b = createBackend(jobConfig(w, opts('x')))
    return new Map((await b.list()).filter(s => classify(s.key)).map(s => [s.key, s.bytes]))
  }
  /** Every snapshot and index entry names only packs the cache has. */
  async function wholeNames(): Promise<void> {
    const keys = await listing()
    const b = createBackend(jobConfig(worlds[0]!, opts('x')))
    for (const k of keys.keys()) {
      if (classify(k)?.kind === 'pack') continue
      const e = await readEntryFrom(b, k, [], 'check')
      for (const p of e!.manifest.packs) expect(keys.has(p.key), `${k} names ${p.key}`).toBe(true)
    }
  }
  async function verified(w: World): Promise<void> {
    const v = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
    expect(v.code, v.stderr).toBe(0)
    expect(v.stderr).not.toMatch(/disappeared|modified|not valid/)
  }

  beforeAll(async () => {
    await fresh()
    // A volume every runner's user shares.
    cacheDir = mkdtempSync(join(tmpdir(), 'nsc-prune-cache-'))
    chmodSync(cacheDir, 0o777)
    if (backend === 's3') {
      ceph = await startCeph()
      bucket = await ceph.bucket('nsc-prune')
    }
  }, 150_000)
  afterAll(async () => {
    for (const k of Object.keys(ceph?.env ?? {})) delete process.env[k]
    await ceph?.stop()
    for (const w of worlds) await removeWorld(w)
    rmSync(cacheDir, { recursive: true, force: true })
  })

  it('drops a superseded snapshot and the pack only it named; kept sets restore with 0 builds; dry run and grace delete nothing', async () => {
    key = 'superseded'
    await run('bigapp')
    // bigbin falls back to bigapp's snapshot and splits its pack: bigapp's set
    // now has a second snapshot naming the parts, and the old pack is dead.
    await run('bigbin')
    const before = await listing()
    const snapshots = [...before.keys()].filter(k => classify(k)?.kind === 'snapshot')
    expect(snapshots).toHaveLength(3)

    const dry = await pruneCli({ 'keep-snapshots': '1', grace: '0', 'dry-run': 'true' })
    expect(dry).toMatch(/prune \(dry run\): would delete [1-9]\d* entries/)
    expect(await listing()).toEqual(before)
    // Everything is younger than the default grace period of an hour.
    const graced = await pruneCli({ 'keep-snapshots': '1' })
    expect(graced).toMatch(/deleted 0 entries/)
    expect(await listing()).toEqual(before)

    const out = await pruneCli({ 'keep-snapshots': '1', grace: '0' })
    const after = await listing()
    const gone = [...before.keys()].filter(k => !after.has(k))
    const kinds = gone.map(k => classify(k)!.kind).sort()
    // bigapp's first snapshot and index entry, and the pack split in two.
    expect(kinds).toEqual(['index', 'pack', 'snapshot'])
    expect(out).toContain(`Deleted pack ${gone.find(k => classify(k)!.kind === 'pack')}`)
    await wholeNames()

    for (const deps of ['bigapp', 'bigbin']) {
      const again = await run(deps)
      expect(again.builds, deps).toBe(0)
      await verified(again.w)
    }
  })

  it('meets a budget by dropping whole sets, the least recently used first', async () => {
    key = 'budget'
    await run('hello')
    await run('figlet')
    // hello is restored again: figlet's set is now the least recently used.
    const warm = await run('hello')
    expect(warm.builds).toBe(0)
    const before = await listing()
    const total = [...before.values()].reduce((a, b) => a + b, 0)
    const budget = total - 1
    const out = await pruneCli({ 'max-size': String(budget), grace: '0' })
    const after = await listing()
    expect([...after.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(budget)
    expect(out).toMatch(/least recently used set, over the budget/)
    await wholeNames()
    // The set restored last is still whole.
    const again = await run('hello')
    expect(again.builds).toBe(0)
    await verified(again.w)
  })

  it.runIf(backend === 'local')(
    'saves running during prunes lose nothing (two processes, many rounds)',
    async () => {
      key = 'race'
      const base = await run('hello')
      expect(base.builds).toBeGreaterThan(0)
      const saver = await fresh(true)
      // The saver's store: every path registered, saved anew under a new key each round.
      const seed = await cli(saver, 'run', { ...opts('hello'), run: 'true' })
      expect(seed.code, seed.stderr).toBe(0)
      const pruner = await fresh(true)
      const rounds = 12
      for (let round = 0; round < rounds; round++) {
        // Time passes with nothing in flight: everything in the cache is old.
        age(cacheDir, 2 * 3600_000)
        // The prune starts later each round, so that it meets the save at
        // every point of its run: before its lookups, between, after.
        const [saved, pruned] = await Promise.all([
          cli(saver, 'save', { ...opts('hello'), key: `race-${round}` }),
          sleep(round * 60).then(() =>
            cli(pruner, 'prune', opts('', { 'max-age': '0', grace: '1h' }))
          )
        ])
        expect(saved.code, saved.stderr).toBe(0)
        expect(saved.stdout + saved.stderr).not.toMatch(/failed/)
        expect(pruned.code, pruned.stdout + pruned.stderr).toBe(0)
        await wholeNames()
        const mine = [...(await listing()).keys()].filter(
          k => k.includes('-') && classify(k)?.kind === 'snapshot'
        )
        expect(mine.length, `round ${round}`).toBeGreaterThan(0)
      }
      // The last round's snapshot restores with 0 builds.
      Object.assign(process.env, env())
      const w = await fresh()
      const r = await job(w, { ...opts('hello'), key: `race-${rounds - 1}` })
      expect(r.restore.source).toBe('snapshot')
      expect(r.builds).toBe(0)
      await verified(w)
    }
  )
})

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** Sets every file in `dir` (and its marks) `ms` into the past. */
function age(dir: string, ms: number): void {
  const t = new Date(Date.now() - ms)
  for (const sub of ['', '.used']) {
    const d = join(dir, sub)
    for (const n of readdirSync(d)) {
      const f = join(d, n)
      if (statSync(f).isFile()) utimesSync(f, t, t)
    }
  }
}
