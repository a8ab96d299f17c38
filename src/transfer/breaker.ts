// A failing or stalled cache service costs a job a bounded time: every call
// has a deadline, and once one call has met a failing service the job makes no
// more (each further call would only wait out its own retries).
import { CacheError } from '../errors.js'

/** The slowest rate a transfer may keep before it counts as stalled, in bytes a second. */
export const MIN_RATE = 1024 * 1024

/** Calls it when bytes move: the deadline is then never sooner than `stallMs` from now. */
export type Progress = () => void

export class Breaker {
  private failing: string | undefined

  /** `stallMs`: input `stall-timeout`. */
  constructor(private readonly stallMs: number) {}

  /** Throws once the service has failed. */
  check(): void {
    if (this.failing) throw new CacheError(this.failing)
  }

  /** Opens the breaker: this call and every later one throw `reason`. */
  trip(reason: string): never {
    this.failing = `${reason}; no more cache calls in this job`
    throw new CacheError(this.failing)
  }

  /**
   * `f` with a deadline of `stallMs` past `bytes` at MIN_RATE, or `stallMs`
   * past its last progress, whichever is later. Past it the signal aborts and
   * the breaker opens. A call that cannot be cancelled (one that ignores the
   * signal) is left behind, its outcome ignored: the entry points end the
   * process once their work is done, as a stalled socket would keep it alive.
   */
  async run<T>(
    what: string,
    bytes: number,
    f: (signal: AbortSignal, progress: Progress) => Promise<T>
  ): Promise<T> {
    this.check()
    const start = Date.now()
    const limit = this.stallMs + (bytes / MIN_RATE) * 1000
    let moved = 0
    const abort = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>(resolve => {
      const wait = (): void => {
        const due = Math.max(start + limit, moved + this.stallMs) - Date.now()
        if (due <= 0) resolve('late')
        else timer = setTimeout(wait, due)
      }
      wait()
    })
    const call = f(abort.signal, () => (moved = Date.now()))
    try {
      const r = await Promise.race([call.then(value => ({ value })), late])
      if (r !== 'late') return r.value
    } finally {
      clearTimeout(timer)
    }
    call.catch(() => undefined)
    abort.abort()
    const seconds = Math.round((Date.now() - start) / 1000)
    return this.trip(
      `the cache service stalled: ${what} did not finish in ${seconds} s ` +
        '(input `stall-timeout` without progress, or past its size at 1 MiB/s)'
    )
  }
}
