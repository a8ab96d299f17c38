// A Nix database another process holds (a nix command still running, a long
// transaction): SQLite answers SQLITE_BUSY once its short busy timeout passes.
// We wait here instead, asynchronously, saying so every `everyMs`, and give up
// after `limitMs` with an error naming the file; the operation is retried whole
// (every one of ours is a single transaction, so a busy one changed nothing).
import { NixDbError } from './errors.js'

export interface BusyOptions {
  limitMs: number
  everyMs: number
  /** Told while waiting, every `everyMs`. */
  onWait: (waitedMs: number) => void
}

export function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown }).code
  return (
    typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
  )
}

export async function retryBusy<T>(
  file: string,
  f: () => T | Promise<T>,
  o: BusyOptions
): Promise<T> {
  const start = Date.now()
  let told = start
  for (;;) {
    try {
      return await f()
    } catch (e) {
      if (!isBusy(e)) throw e
      const now = Date.now()
      if (now - start >= o.limitMs) {
        throw new NixDbError(
          `${file} is still locked by another process after ${Math.round((now - start) / 1000)} s ` +
            '(a nix command still running?)'
        )
      }
      if (now - told >= o.everyMs || told === start) {
        o.onWait(now - start)
        told = now
      }
      await new Promise(r => setTimeout(r, 250))
    }
  }
}
