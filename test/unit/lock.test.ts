import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CacheError } from '../../src/errors.js'
import { withLock } from '../../src/store/lock.js'

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

describe('withLock', () => {
  let dir: string
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
    expect(existsSync(join(dir, 'lock'))).toBe(false)
  })

  it('takes over a lock whose owner is gone', async () => {
    const dead = spawnSync('true').pid!
    mkdirSync(join(dir, 'lock'))
    writeFileSync(join(dir, 'lock', 'pid'), String(dead))
    expect(await withLock(dir, () => Promise.resolve('taken'), { timeoutMs: 1000 })).toBe('taken')
  })

  it('takes over a lock that never got a pid, once it is a minute old', async () => {
    mkdirSync(join(dir, 'lock'))
    const old = new Date(Date.now() - 120_000)
    utimesSync(join(dir, 'lock'), old, old)
    expect(await withLock(dir, () => Promise.resolve('taken'), { timeoutMs: 1000 })).toBe('taken')
  })

  it('gives up on a live owner after the timeout, saying who holds it', async () => {
    mkdirSync(join(dir, 'lock'))
    writeFileSync(join(dir, 'lock', 'pid'), String(process.ppid))
    let waitedFor = 0
    const attempt = withLock(dir, () => Promise.resolve('never'), {
      timeoutMs: 300,
      onWait: o => (waitedFor = o)
    })
    await expect(attempt).rejects.toThrow(CacheError)
    await expect(withLock(dir, () => Promise.resolve(1), { timeoutMs: 100 })).rejects.toThrow(
      new RegExp(`held by process ${process.ppid}`)
    )
    expect(waitedFor).toBe(process.ppid)
  })
})
