// The transfer breaker: a stalled call is given up at its deadline, and then
// no more calls are made; progress keeps a slow but moving call alive.
import { describe, expect, it } from 'vitest'
import { CacheError } from '../../src/errors.js'
import { Breaker, MIN_RATE } from '../../src/transfer/breaker.js'

const never = <T>(): Promise<T> => new Promise<T>(() => undefined)
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

describe('Breaker', () => {
  it('gives up a call that never ends at stall-timeout, aborts its signal, and makes no more calls', async () => {
    const b = new Breaker(60)
    let signal: AbortSignal | undefined
    const start = Date.now()
    await expect(
      b.run('the save of k', 0, s => {
        signal = s
        return never()
      })
    ).rejects.toThrow(/the cache service stalled: the save of k did not finish in \d+ s/)
    expect(Date.now() - start).toBeGreaterThanOrEqual(55)
    expect(signal?.aborted).toBe(true)
    let called = false
    const later = b.run('the restore of j', 0, async () => {
      called = true
      return 1
    })
    await expect(later).rejects.toBeInstanceOf(CacheError)
    await expect(later).rejects.toThrow(/no more cache calls in this job/)
    expect(called).toBe(false)
  })

  it('allows a call its bytes at 1 MiB/s past stall-timeout', async () => {
    const b = new Breaker(20)
    // 0.1 MiB: 100 ms at MIN_RATE, so 120 ms in all.
    const r = await b.run('the save of k', MIN_RATE / 10, async () => {
      await sleep(80)
      return 'done'
    })
    expect(r).toBe('done')
  })

  it('keeps a call alive while it makes progress, however long it takes', async () => {
    const b = new Breaker(60)
    const r = await b.run('the restore of k', 0, async (_s, progress) => {
      for (let i = 0; i < 8; i++) {
        await sleep(30)
        progress()
      }
      return 'done'
    })
    expect(r).toBe('done')
    // And one whose progress stops is given up.
    await expect(
      b.run('the restore of j', 0, async (_s, progress) => {
        for (let i = 0; i < 3; i++) {
          await sleep(30)
          progress()
        }
        return never()
      })
    ).rejects.toThrow(/stalled: the restore of j/)
  })

  it('passes a failure through without opening', async () => {
    const b = new Breaker(1000)
    await expect(b.run('x', 0, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    await expect(b.run('y', 0, async () => 2)).resolves.toBe(2)
  })
})
