// The built action, run the way the runner runs it (dist/main then dist/post,
// INPUT_*, file commands, STATE_*), as an unprivileged user like GitHub's
// `runner`, with the rig's launcher as the `nix-portable` input, on both backends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appendFileSync, chownSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { startCacheService, type CacheService } from '../rig/cache-service.js'
import { Job } from '../rig/runner.js'
import {
  countBuilds,
  makeWorld,
  nixPortable,
  NOBODY,
  removeWorld,
  type World
} from '../rig/world.js'

describe.each(['local', 'github'] as const)('the action on the %s backend', backend => {
  const worlds: World[] = []
  let service: CacheService | undefined
  let cacheDir: string

  async function world(): Promise<World> {
    const w = await makeWorld({ unprivileged: true })
    worlds.push(w)
    return w
  }
  function inputs(w: World, deps: string, run: string): Record<string, string> {
    return {
      systemDependencies: deps,
      run,
      backend,
      'cache-dir': cacheDir,
      'nix-portable': w.launcher,
      location: w.location
    }
  }

  beforeAll(async () => {
    const shared = await world()
    cacheDir = join(shared.root, 'cache')
    mkdirSync(cacheDir)
    chownSync(cacheDir, NOBODY.uid, NOBODY.gid)
    if (backend === 'github') service = await startCacheService()
  })
  afterAll(async () => {
    await service?.stop()
    for (const w of worlds) await removeWorld(w)
  })

  it('cold job saves; warm job hits, builds and saves nothing; one more dependency saves a small pack', async () => {
    const cold = await world()
    const c = await new Job(cold, service?.env).action(
      inputs(cold, 'hello cowsay bigbin', 'cowsay cold')
    )
    expect(c.main.code, c.main.stdout + c.main.stderr).toBe(0)
    expect(c.main.stdout).toContain(' < cold Hello, world! >')
    expect(c.main.outputs['cache-hit']).toBe('false')
    expect(c.main.outputs['restore-source']).toBe('none')
    expect(c.main.outputs['nix-portable']).toBe(cold.launcher)
    expect(c.main.env.NP_LOCATION).toBe(cold.location)
    expect(c.post.code, c.post.stdout).toBe(0)
    expect(Number(c.post.outputs['paths-saved'])).toBeGreaterThan(5)
    expect(c.post.summary).toMatch(/nix-store-cache: save/)
    expect(c.post.summary).toMatch(/<table>/)

    const warm = await world()
    const w = await new Job(warm, service?.env).action(
      inputs(warm, 'bigbin, cowsay\nhello', 'cowsay warm')
    )
    expect(w.main.code, w.main.stdout).toBe(0)
    expect(w.main.outputs['cache-hit']).toBe('true')
    expect(w.main.outputs['restore-source']).toBe('snapshot')
    expect(w.main.summary).toMatch(/bytes restored: ([\d.]+ MiB) of \1 the closure needs/)
    expect(w.main.outputs['restored-key']).toMatch(/^nix-store-cache-v1-linux-/)
    expect(Number(w.main.outputs['paths-restored'])).toBe(Number(c.post.outputs['paths-saved']))
    expect(countBuilds(w.main.stderr + w.main.stdout)).toBe(0)
    expect(w.main.stdout).toContain(' < warm Hello, world! >')
    expect(w.post.outputs['paths-saved']).toBe('0')
    expect(w.post.stdout).toMatch(/Nothing new/)
    expect(w.main.summary).toMatch(/hit/)
    const verify = await nixPortable(warm, ['nix-store', '--verify', '--check-contents'])
    expect(verify.code).toBe(0)

    const more = await world()
    const m = await new Job(more, service?.env).action(
      inputs(more, 'hello cowsay bigbin figlet', 'figlet more')
    )
    expect(m.main.code).toBe(0)
    expect(m.main.outputs['cache-hit']).toBe('false')
    expect(m.main.outputs['restore-source']).toBe('partial')
    expect(Number(m.main.outputs['paths-restored'])).toBeGreaterThan(5)
    expect(Number(m.post.outputs['paths-saved'])).toBe(1) // figlet
    expect(Number(m.post.outputs['bytes-saved'])).toBeLessThan(
      Number(c.post.outputs['bytes-saved']) / 10
    )
    expect(m.post.summary).toMatch(/the closure of these dependencies: /)

    // A combination never run, of packages the cache has: the index, and no build.
    const combo = await world()
    const n = await new Job(combo, service?.env).action(inputs(combo, 'figlet hello', 'figlet x'))
    expect(n.main.code, n.main.stdout).toBe(0)
    expect(n.main.outputs['restore-source']).toBe('packages')
    expect(n.main.outputs['cache-hit']).toBe('true')
    expect(countBuilds(n.main.stderr + n.main.stdout)).toBe(0)
    expect(n.post.code, n.post.stdout).toBe(0)
    expect(n.post.stdout).toMatch(/saved snapshot/)
  })

  it('restore and save sub-actions share state across steps', async () => {
    const w = await world()
    const job = new Job(w, service?.env)
    const base = {
      backend,
      'cache-dir': cacheDir,
      'nix-portable': w.launcher,
      location: w.location
    }
    const r = await job.run(
      'restore',
      { ...base, systemDependencies: 'hello multi' },
      'restore/action.yml'
    )
    expect(r.code, r.stdout).toBe(0)
    expect(r.env.NIX_STORE_CACHE_STATE_FILE).toBeTruthy()
    const shell = await nixPortable(w, ['nix-shell', '-p', 'hello', 'multi', '--run', 'hello'])
    expect(shell.stdout).toBe('Hello, world!\n')
    const s = await job.run(
      'save',
      { ...base, systemDependencies: 'hello multi' },
      'save/action.yml'
    )
    expect(s.code, s.stdout).toBe(0)
    expect(Number(s.outputs['paths-saved'])).toBeGreaterThan(0)
    expect(Number(s.outputs['paths-saved'])).toBeLessThan(6) // multi's outputs and .drv, the shell's .drv
  })

  // A 5xx costs each step one @actions/cache call's own retries (about 25 s:
  // five tries, 3 s apart and growing), then no more calls: not one per entry.
  it.runIf(backend === 'github').each([429, 500])(
    'goes on uncached, with warnings, while the cache service answers %i',
    async status => {
      const w = await world()
      service!.failNext(status, 1000)
      try {
        const { main, post } = await new Job(w, service!.env).action(inputs(w, 'hello', 'hello'))
        expect(main.code).toBe(0)
        expect(main.stdout).toContain('Hello, world!')
        expect(main.outputs['cache-hit']).toBe('false')
        expect(main.outputs['restore-source']).toBe('none')
        expect(main.stdout).toMatch(new RegExp(`::warning::.*${status}`))
        expect(post.code).toBe(0)
        expect(post.stdout).toMatch(
          /::warning::Saving the cache failed: the cache service (did not store|failed or stalled)/
        )
      } finally {
        service!.failNext(0, 0)
      }
    }
  )

  // A stalled transfer: the link in front of the blob store holds every byte
  // (uploads) or all but the first (downloads), keeping the connection open.
  it.runIf(backend === 'github')(
    'a cache service that stalls uploads costs the post step its stall-timeout, then a warning; nothing is left running',
    async () => {
      const own = await startCacheService({ link: { rttMs: 0, uploadBytesPerSecond: 1e12 } })
      try {
        await own.stall('upload')
        const w = await world()
        const start = Date.now()
        const { main, post } = await new Job(w, own.env).action({
          ...inputs(w, 'hello', 'hello'),
          'stall-timeout': '3s'
        })
        const seconds = (Date.now() - start) / 1000
        expect(main.code, main.stdout).toBe(0)
        expect(main.stdout).toContain('Hello, world!')
        expect(post.code, post.stdout).toBe(0)
        expect(post.stdout).toMatch(
          /::warning::Saving the cache failed: the cache service stalled: the save of \S+ did not finish in \d+ s/
        )
        // The step ended although its upload still hangs: bounded by the
        // stall-timeout, not by the job's timeout.
        expect(seconds).toBeLessThan(60)
        expect(own.entries()).toHaveLength(0)
      } finally {
        await own.release()
        await own.stop()
      }
    }
  )

  it.runIf(backend === 'github')(
    'a cache service that stalls downloads: the restore gives up after one, the job builds and passes, the post step saves',
    async () => {
      const own = await startCacheService({ link: { rttMs: 0, uploadBytesPerSecond: 1e12 } })
      try {
        const first = await world()
        const cold = await new Job(first, own.env).action(inputs(first, 'hello', 'hello'))
        expect(cold.post.code, cold.post.stdout).toBe(0)
        const saved = own.entries().length
        expect(saved).toBeGreaterThan(1)

        // Response headers pass, the body stops.
        await own.stall('download', 1024)
        const w = await world()
        const { main, post } = await new Job(w, own.env).action({
          ...inputs(w, 'hello', 'hello'),
          'stall-timeout': '3s'
        })
        expect(main.code, main.stdout).toBe(0)
        expect(main.stdout).toContain('Hello, world!')
        // Given up at the stall-timeout (or by @actions/cache, silent for 5 s);
        // the job then makes no more calls in this step.
        expect(main.stdout).toMatch(/::warning::.*the cache service (failed or stalled|stalled:)/)
        expect(main.outputs['cache-hit']).toBe('false')
        expect(post.code, post.stdout).toBe(0)
        expect(post.stdout).toMatch(/Saved snapshot/)
        const verify = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
        expect(verify.code).toBe(0)
      } finally {
        await own.release()
        await own.stop()
      }
    }
  )

  it.runIf(backend === 'github')(
    "with a token, the post step purges the set's older snapshots and the packs nothing names; without, the summary says what a token would do",
    async () => {
      // A service of its own: the other tests' entries would change what falls back to what.
      const own = await startCacheService()
      try {
        await purgeScenario(own)
      } finally {
        await own.stop()
      }
    }
  )

  async function purgeScenario(service: CacheService): Promise<void> {
    const env = { ...service.env, ...service.apiEnv }
    const purge = { token: 'rig-token', 'keep-snapshots': '1', grace: '0' }
    const job = async (deps: string, more: Record<string, string> = purge) => {
      const w = await world()
      const r = await new Job(w, env).action({ ...inputs(w, deps, 'true'), ...more })
      expect(r.main.code, r.main.stdout).toBe(0)
      expect(r.post.code, r.post.stdout).toBe(0)
      expect(r.post.stdout).not.toMatch(/::warning::/)
      return { w, ...r }
    }
    await job('bigapp')
    const firstApp = service.entries().map(e => e.key)
    // bigbin falls back to bigapp's snapshot and splits its pack: bigapp's
    // set gets a second snapshot and index entry, naming the two parts.
    await job('bigbin')

    const calls = service.restCalls.length
    const noToken = await job('bigapp', { prune: 'true' })
    expect(noToken.post.summary).toMatch(/no `token`, so nothing was deleted/)
    expect(service.restCalls.length).toBe(calls)

    const before = service.entries().map(e => e.key)
    const app = await job('bigapp')
    expect(countBuilds(app.main.stderr + app.main.stdout)).toBe(0)
    expect(app.post.summary).toMatch(/prune: deleted [1-9]\d* entries/)
    const after = new Set(service.entries().map(e => e.key))
    const gone = before.filter(k => !after.has(k))
    // bigapp's first snapshot, its first index entry, and the pack that was split.
    expect(
      gone
        .map(k => (k.includes('-index-') ? 'index' : /-pack-/.test(k) ? 'pack' : 'snapshot'))
        .sort()
    ).toEqual(['index', 'pack', 'snapshot'])
    expect(gone.every(k => firstApp.includes(k))).toBe(true)
    expect(
      service.restCalls.some(c =>
        c.startsWith('DELETE /repos/rig-owner/rig-repo/actions/caches?key=')
      )
    ).toBe(true)

    // Both sets still restore whole from what is left, building nothing.
    for (const deps of ['bigapp', 'bigbin']) {
      const again = await job(deps, {})
      expect(again.main.outputs['cache-hit'], deps).toBe('true')
      expect(countBuilds(again.main.stderr + again.main.stdout), deps).toBe(0)
      const verify = await nixPortable(again.w, ['nix-store', '--verify', '--check-contents'])
      expect(verify.code, verify.stderr).toBe(0)
    }
  }

  it('fails on bad input before touching anything', async () => {
    const w = await world()
    const r = await new Job(w, service?.env).run('main', inputs(w, 'gcc;rm -rf /', 'true'))
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(
      /::error::Input `systemDependencies`: `gcc;rm` is not a nixpkgs attribute name/
    )
    expect(existsSync(join(w.location, '.nix-portable'))).toBe(false)
  })

  it('fails on a miss when fail-on-cache-miss is true, before running anything', async () => {
    const w = await world()
    // Another nix-portable build (its digest keys the cache): no snapshot matches at all.
    appendFileSync(w.launcher, '\n# another build\n')
    const r = await new Job(w, service?.env).run('main', {
      ...inputs(w, 'figlet', 'echo RUN-MARKER-42'),
      'fail-on-cache-miss': 'true'
    })
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/::error::No cache entry matches .* and `fail-on-cache-miss` is true/)
    expect(r.stdout).not.toContain('RUN-MARKER-42')
  })

  it('fails the step when `run` fails, and then the post step does not run', async () => {
    const w = await world()
    const r = await new Job(w, service?.env).run('main', inputs(w, 'hello', 'hello; exit 3'))
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/::error::`run` exited with code 3/)
  })
})
