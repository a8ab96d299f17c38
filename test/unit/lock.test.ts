import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CacheError } from '../../src/errors.js'
import { withLock } from '../../src/store/lock.js'

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

describe('withLock', () => {
  let dir: string
  let contender: string
  beforeAll(() => {
    // The contender runs our withLock in processes of its own.
    contender = mkdtempSync(join(tmpdir(), 'nsc-contender-'))
    const ncc = join('node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js')
    execFileSync(process.execPath, [
      ncc,
      'build',
      'test/rig/lock-contender.ts',
      '-o',
      contender,
      '-q',
      '-t' // transpile only: the project is typechecked elsewhere
    ])
  }, 60_000)
  afterAll(() => rmSync(contender, { recursive: true, force: true }))
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nsc-lock-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('lets one holder in at a time, and releases on error', async () => {
    const events: string[] = []
    const holder =
      (name: string, fail = false) =>
      async () => {
        events.push(`${name} in`)
        await sleep(50)
        events.push(`${name} out`)
        if (fail) throw new Error(`${name} failed`)
        return name
      }
    const results = await Promise.allSettled([
      withLock(dir, holder('a', true)),
      withLock(dir, holder('b')),
      withLock(dir, holder('c'))
    ])
    expect(results.map(r => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled'])
    for (let i = 0; i < events.length; i += 2) {
      expect(events[i]!.split(' ')[0]).toBe(events[i + 1]!.split(' ')[0]) // in, then out, never interleaved
    }
  })

  it('never lets two processes in at once when both take a stale lock, 50 rounds', async () => {
    const script = join(contender, 'index.js')
    const lines = (
      args: string[]
    ): { proc: ReturnType<typeof spawn>; saw: (l: string) => Promise<void> } => {
      const proc = spawn(process.execPath, [script, ...args])
      let out = ''
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
      const saw = async (l: string): Promise<void> => {
        while (!out.includes(l)) await sleep(2)
      }
      return { proc, saw }
    }
    const exit = (p: ReturnType<typeof spawn>): Promise<number | null> =>
      new Promise(r => (p.exitCode !== null ? r(p.exitCode) : p.once('close', r)))
    for (let round = 0; round < 50; round++) {
      const d = mkdtempSync(join(tmpdir(), 'nsc-race-'))
      // A holder dies holding the lock (SIGKILL: no cleanup at all).
      const victim = lines([d, 'hold'])
      await victim.saw('holding')
      victim.proc.kill('SIGKILL')
      await exit(victim.proc)
      // Two contenders, released at the same instant.
      const go = join(d, 'go')
      const [a, b] = [lines([d, 'once', go]), lines([d, 'once', go])]
      await Promise.all([a.saw('ready'), b.saw('ready')])
      writeFileSync(go, '')
      expect([await exit(a.proc), await exit(b.proc)], `round ${round}`).toEqual([0, 0])
      rmSync(d, { recursive: true, force: true })
    }
  }, 120_000)

  it('is not fooled by an owner file naming a live unrelated process', async () => {
    writeFileSync(join(dir, 'lock'), '')
    writeFileSync(join(dir, 'owner'), JSON.stringify({ pid: 1, host: 'h', since: 'x', what: 'y' }))
    const start = Date.now()
    expect(await withLock(dir, () => Promise.resolve('taken'), { timeoutMs: 2000 })).toBe('taken')
    expect(Date.now() - start).toBeLessThan(1000)
  })

  it('says who holds it while waiting, and gives up after the timeout', async () => {
    // Another process really holds the lock.
    const other = spawn('flock', ['--exclusive', join(dir, 'lock'), 'sleep', '30'], {
      detached: true
    })
    await sleep(200)
    const owner = { pid: other.pid, host: 'runner-7', since: '2026-01-01T00:00:00Z', what: 'save' }
    writeFileSync(join(dir, 'owner'), JSON.stringify(owner))
    const waits: [string, number][] = []
    const attempt = withLock(dir, () => Promise.resolve('never'), {
      timeoutMs: 1500,
      everyMs: 300,
      onWait: (h, ms) => waits.push([h, ms])
    })
    await expect(attempt).rejects.toThrow(CacheError)
    await expect(attempt).rejects.toThrow(
      new RegExp(`held by process ${other.pid} on runner-7 \\(save`)
    )
    expect(waits.length).toBeGreaterThanOrEqual(3)
    expect(waits[0]![0]).toContain(`process ${other.pid} on runner-7`)
    expect(waits.at(-1)![1]).toBeGreaterThan(waits[0]![1])
    process.kill(-other.pid!, 'SIGKILL') // flock and its sleep, which shares the lock
    // Once the holder is gone, the lock is free at once.
    await new Promise(r => other.once('close', r))
    expect(await withLock(dir, () => Promise.resolve(1), { timeoutMs: 1000 })).toBe(1)
    expect(existsSync(join(dir, 'lock'))).toBe(true) // the file stays; the kernel lock is what counts
  })
})
