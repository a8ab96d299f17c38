// The s3 backend against a real object store: Ceph's RADOS gateway on one node
// (test/rig/ceph.sh). Jobs run through the built CLI as an unprivileged user,
// credentials from the environment (the AWS SDK's default chain); nix's own
// --verify is the oracle.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { S3Backend } from '../../src/backend/s3.js'
import { cli, cliRuntime, type JobOptions } from '../rig/jobs.js'
import { startCeph, type Ceph } from '../rig/ceph.js'
import { startLink } from '../rig/link.js'
import {
  asWorldUser,
  countBuilds,
  makeWorld,
  nixPortable,
  removeWorld,
  type World
} from '../rig/world.js'

const DEPS = 'hello cowsay'

describe('the s3 backend on a Ceph gateway', () => {
  let ceph: Ceph
  let bucket: string
  const worlds: World[] = []

  async function world(): Promise<World> {
    const w = await makeWorld({ unprivileged: true })
    worlds.push(w)
    return w
  }
  function opts(deps: string, extra: Record<string, string> = {}, run = 'true'): JobOptions {
    return {
      deps,
      backend: 's3',
      cacheDir: '',
      run,
      inputs: {
        's3-bucket': bucket,
        's3-endpoint': ceph.endpoint,
        's3-force-path-style': 'true',
        ...extra
      }
    }
  }
  async function objects(prefix = 'nix-store-cache/'): Promise<string[]> {
    const r = await ceph
      .client()
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1000 }))
    return (r.Contents ?? []).map(o => o.Key!)
  }
  async function verified(w: World): Promise<void> {
    const v = await nixPortable(w, ['nix-store', '--verify', '--check-contents'])
    expect(v.code, v.stderr).toBe(0)
    expect(v.stderr).not.toMatch(/disappeared|modified|not valid/)
  }

  beforeAll(async () => {
    ceph = await startCeph()
    bucket = await ceph.bucket('nsc-test')
  }, 150_000)
  afterAll(async () => {
    await ceph?.stop()
    for (const w of worlds) await removeWorld(w)
  })

  it('a cold job saves under the prefix; a warm job elsewhere builds nothing and nix verifies it', async () => {
    const cold = await world()
    const c = await cli(cold, 'run', opts(DEPS, {}, 'cowsay cold'), ceph.env)
    expect(c.code, c.stdout + c.stderr).toBe(0)
    expect(c.stdout).toContain(' < cold Hello, world! >')
    expect(c.stdout).toMatch(/Saved pack/)
    const keys = await objects()
    expect(
      keys.some(k => /^nix-store-cache\/nix-store-cache-v1-.*-pack-.*\.tar\.zst$/.test(k))
    ).toBe(true)
    expect(keys.filter(k => k.includes('-index-'))).toHaveLength(3) // hello, cowsay, the shell

    const warm = await world()
    const w = await cli(warm, 'run', opts(DEPS, {}, 'cowsay warm'), ceph.env)
    expect(w.code, w.stderr).toBe(0)
    expect(w.stdout).toMatch(/restore: hit from snapshot/)
    expect(countBuilds(w.stderr)).toBe(0)
    expect(w.stdout).toMatch(/Nothing new/)
    expect(w.stderr).not.toMatch(/warning/)
    // The SDK's own console noise: an empty last-use mark once said "a Stream of unknown length".
    expect(c.stderr + w.stderr).not.toMatch(/unknown length/)
    await verified(warm)
  })

  it('two runners saving at once both succeed, and the cache stays restorable', async () => {
    const [a, b] = [await world(), await world()]
    const o = opts(`${DEPS} figlet`, { 's3-prefix': 'fleet/' })
    const [ra, rb] = await Promise.all([cli(a, 'run', o, ceph.env), cli(b, 'run', o, ceph.env)])
    expect(ra.code, ra.stderr).toBe(0)
    expect(rb.code, rb.stderr).toBe(0)
    expect(ra.stderr + rb.stderr).not.toMatch(/warning/)
    expect((await objects('fleet/')).every(k => k.startsWith('fleet/'))).toBe(true)
    const c = await world()
    const r = await cli(c, 'run', o, ceph.env)
    expect(r.stdout).toMatch(/restore: hit/)
    expect(countBuilds(r.stderr)).toBe(0)
    await verified(c)
  })

  /**
   * A gateway that stalls: a link in front of it that carries `afterBytes` of
   * each connection in `direction`, then holds the rest with the connection
   * open; and a bigbin job's options through it, with a short stall-timeout.
   */
  async function stalling(direction: 'upload' | 'download', afterBytes: number, prefix: string) {
    const link = await startLink(Number(new URL(ceph.endpoint).port), {
      uploadBytesPerSecond: 1e12
    })
    await link.stall(direction, afterBytes)
    const o = opts('bigbin', {
      's3-endpoint': link.endpoint,
      's3-prefix': prefix,
      'stall-timeout': '3s'
    })
    return { link, o }
  }

  it('a gateway that stalls mid-upload: the save gives up at its deadline with a warning naming the bucket; nothing a reader can find', async () => {
    const { link, o } = await stalling('upload', 256 * 1024, 'stalled/')
    try {
      const w = await world()
      const start = Date.now()
      const r = await cli(w, 'run', o, ceph.env)
      const seconds = (Date.now() - start) / 1000
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout + r.stderr).toMatch(
        new RegExp(
          `S3 bucket ${bucket} at ${link.endpoint}: the cache service stalled: the save of \\S+ did not finish in \\d+ s`
        )
      )
      // Bounded by the deadline (3 s past a few MB at 1 MiB/s), not by the stall.
      expect(seconds).toBeLessThan(90)
      await link.release()
      const left = (await objects('stalled/')).filter(k => !k.startsWith('stalled/used/'))
      expect(left.filter(k => !k.includes('-pack-'))).toEqual([])
    } finally {
      await link.close()
    }
  }, 120_000)

  it('a gateway that stalls mid-download: the restore gives up that pack, the job builds it and passes', async () => {
    const saved = await cli(
      await world(),
      'run',
      opts('bigbin', { 's3-prefix': 'slow-read/' }),
      ceph.env
    )
    expect(saved.code, saved.stderr).toBe(0)
    const { link, o } = await stalling('download', 512 * 1024, 'slow-read/')
    try {
      const w = await world()
      const r = await cli(w, 'restore', o, ceph.env)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout + r.stderr).toMatch(
        /Pack \S+ could not be fetched \(S3 bucket .*: the cache service stalled: the restore of \S+ did not finish/
      )
      await link.release()
      // What was restored is whole; the rest builds.
      await verified(w)
      const built = await nixPortable(w, ['nix-shell', '-p', 'bigbin', '--run', 'bigbin'])
      expect(built.stdout).toContain('bigbin')
      await verified(w)
    } finally {
      await link.close()
    }
  }, 120_000)

  it('a killed upload leaves nothing a reader can find; the next save stores it', async () => {
    // 4 MB/s to the gateway: bigbin's pack takes seconds, time to kill the job during it.
    const port = Number(new URL(ceph.endpoint).port)
    const link = await startLink(port, { uploadBytesPerSecond: 4 * 1024 * 1024 })
    try {
      const o = opts('bigbin', { 's3-endpoint': link.endpoint, 's3-prefix': 'killed/' })
      const w = await world()
      const built = await nixPortable(w, ['nix-shell', '-p', 'bigbin', '--run', 'true'])
      expect(built.code).toBe(0)
      const { node, cli: entry } = cliRuntime()
      const args = [entry, 'save', '--systemDependencies', 'bigbin', '--backend', 's3']
      for (const [k, v] of Object.entries(o.inputs!)) args.push(`--${k}`, v)
      args.push('--location', w.location, '--nix-portable', w.launcher)
      const [file, argv] = asWorldUser(w, node, args)
      const child = spawn(file, argv, {
        env: { ...w.env, ...ceph.env },
        cwd: w.workspace,
        stdio: 'ignore'
      })
      // Kill it once a megabyte of the pack is on its way (the calls before it are small).
      let uploading = false
      for (let i = 0; i < 1200 && !uploading; i++) {
        uploading = (await link.sent()) > 1024 * 1024
        if (!uploading) await new Promise(r => setTimeout(r, 25))
      }
      expect(uploading).toBe(true)
      child.kill('SIGKILL')
      await new Promise(r => child.on('close', r))
      // Packs upload side by side: the small one may have landed whole, the big
      // one has not, and nothing names either (snapshots come after packs).
      // (The save's last-use marks, under used/, are not entries.)
      const landed = async (): Promise<string[]> =>
        (await objects('killed/')).filter(k => !k.startsWith('killed/used/'))
      await new Promise(r => setTimeout(r, 1000)) // whatever was in flight has ended by now
      const after = await landed()
      expect(after.filter(k => !k.includes('-pack-'))).toEqual([])
      expect(after.length).toBeLessThanOrEqual(1)

      const reader = await world()
      const r = await cli(reader, 'restore', opts('bigbin', { 's3-prefix': 'killed/' }), ceph.env)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/restore: miss/)

      const again = await cli(w, 'save', opts('bigbin', { 's3-prefix': 'killed/' }), ceph.env)
      expect(again.code, again.stderr).toBe(0)
      expect(again.stdout).toMatch(/Saved pack .*: 1 paths/) // bigbin's
      const warm = await world()
      const h = await cli(warm, 'run', opts('bigbin', { 's3-prefix': 'killed/' }), ceph.env)
      expect(h.stdout).toMatch(/restore: hit/)
      expect(countBuilds(h.stderr)).toBe(0)
      await verified(warm)
    } finally {
      await link.close()
    }
  }, 120_000)

  it.each([
    [
      'wrong credentials',
      { AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
      {},
      /SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/
    ],
    ['a missing bucket', {}, { 's3-bucket': 'no-such-bucket' }, /NoSuchBucket/],
    ['an unreachable endpoint', {}, { 's3-endpoint': 'http://127.0.0.1:9' }, /ECONNREFUSED|connect/]
  ])(
    '%s: a warning naming the bucket and endpoint, and the job goes on',
    async (_what, env, extra, why) => {
      const w = await world()
      const o = opts('figlet', extra as Record<string, string>, 'figlet ok')
      const r = await cli(w, 'run', o, { ...ceph.env, ...env })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toContain('FIGLET ok')
      const bucketName = (extra as Record<string, string>)['s3-bucket'] ?? bucket
      const endpoint = (extra as Record<string, string>)['s3-endpoint'] ?? ceph.endpoint
      expect(r.stderr).toMatch(/warning: Restoring the cache failed/)
      expect(r.stderr).toContain(`S3 bucket ${bucketName} at ${endpoint}`)
      expect(r.stderr).toMatch(why)
      expect(r.stderr).toMatch(/warning: saving the cache failed/)
    },
    60_000
  )

  describe('downloads: curl straight into zstd, the SDK when curl is missing or fails', () => {
    let env: NodeJS.ProcessEnv
    beforeAll(() => {
      env = { ...process.env }
      Object.assign(process.env, ceph.env) // the SDK's default chain, in this process
    })
    afterAll(() => {
      process.env = env
    })
    const backend = async (curl: string | false): Promise<S3Backend> => {
      const config = {
        bucket,
        prefix: 'downloads/',
        endpoint: ceph.endpoint,
        region: 'us-east-1',
        forcePathStyle: true
      }
      return new S3Backend(config, join((await world()).root, 'stage'), 60_000, curl)
    }
    const tree = async (): Promise<string> => {
      const dir = join((await world()).root, 'src')
      mkdirSync(join(dir, 'sub'), { recursive: true })
      writeFileSync(join(dir, 'sub', 'data'), randomBytes(5_000_000))
      writeFileSync(join(dir, 'small'), 'hello\n')
      return dir
    }
    const same = (a: string, b: string): void => {
      for (const f of ['small', 'sub/data'])
        expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true)
    }

    /** curl, logging each exit code to `log`. */
    const loggedCurl = async (log: string): Promise<string> => {
      const path = join((await world()).root, 'curl')
      writeFileSync(path, `#!/bin/sh\ncurl "$@"; rc=$?; echo $rc >> ${log}; exit $rc\n`, {
        mode: 0o755
      })
      return path
    }

    /** An executable whose interpreter is missing: spawning it fails (ENOENT). */
    const unstartable = async (): Promise<string> => {
      const path = join((await world()).root, 'curl')
      writeFileSync(path, '#!/nonexistent/sh\n', { mode: 0o755 })
      return path
    }

    it.each([
      ['curl', 'logged'],
      ['the SDK alone', false],
      ['the SDK after curl fails', '/bin/false'],
      ['the SDK when curl cannot start', 'unstartable']
    ] as const)('%s: the tree saved, file for file; a missing key is a miss', async (_, use) => {
      const src = await tree()
      const log = join(src, '..', 'curl.log')
      const curl =
        use === 'logged' ? await loggedCurl(log) : use === 'unstartable' ? await unstartable() : use
      const b = await backend(curl)
      const key = `entry-${randomBytes(4).toString('hex')}`
      expect((await b.save(src, key)).result).toBe('saved')
      const into = join((await world()).root, 'into')
      expect(await b.restore(into, key, [])).toBe(key)
      same(src, into)
      // By prefix, through the listing, then the same download.
      const again = join((await world()).root, 'again')
      expect(await b.restore(again, 'entry-', [])).toMatch(/^entry-/)
      expect(await b.restore(join((await world()).root, 'none'), `${key}-gone`, [])).toBe(undefined)
      // curl fetched both, and met the missing one as an HTTP error (22).
      if (use === 'logged') expect(readFileSync(log, 'utf8')).toBe('0\n0\n22\n')
    })
  })
})
