// Transfers in flight at once: packs download (and extract, and start hashing)
// side by side, and upload side by side, a bounded number at a time.
import { availableParallelism } from 'node:os'

/** Small calls at once: lookups of index entries, marks, deletions. */
export const WIDTH = 8

/** How packs travel: how many at once, and how large. */
export interface TransferShape {
  /** Packs in flight at once. */
  width: number
  /** New paths past this many bytes go into several packs. */
  packBytes: number
  /**
   * A large group is also split towards this many packs of about equal bytes
   * (none under MIN_PART), so that a restore fetches them in one wave; 1: not.
   */
  parts: number
  /**
   * Packs saved at once, where this process compresses them itself (local,
   * s3): each zstd then gets its share of the cores (compressThreads).
   * Undefined: `width`.
   */
  saveWidth?: number
}

const CORES = availableParallelism()

const MiB = 1024 * 1024

/** A pack split towards `parts` is never smaller than this. */
export const MIN_PART = 16 * MiB

/**
 * Where every call costs a round trip (github). Measured by `npm run
 * bench:transfer` (100 ms round trip, 256 MB in 32 libraries, 2 cores): each
 * pack costs about three round trips that only width hides; with packs of at
 * most 64 MiB, restores took 3.29, 2.37, 2.16 and 2.00 s and saves 5.56, 4.36,
 * 3.09 and 2.85 s at widths 1, 2, 4 and 8. At width 8, split towards 8 packs,
 * restores took 2.13, 1.77, 2.00, 1.85 and 1.73 s with packs of at most 16,
 * 32, 64, 128 and 1024 MiB; unsplit 128 MiB packs 2.04 s (saves 2.96 s split,
 * 2.65 s not): splitting buys restores, which every job pays, with saves.
 */
export const DISTANT: TransferShape = { width: 8, packBytes: 128 * MiB, parts: 8 }

/**
 * Where a call costs next to nothing and every pack costs CPU (local, s3 on a
 * nearby gateway). Measured by `npm run bench:cache` on 2 cores: with
 * DISTANT's shape, local restores and saves took 1.31x and 1.87x of tar+zstd,
 * s3 ones 1.58x and 1.52x; with this one 1.07x and 1.52x, and 1.53x and 1.41x.
 * Since tar runs zstd itself (transfer/archive.ts), six s3 packs of 355 MB
 * saved at widths 1, 2 and 4 in 1.17x, 1.08x and 1.05x of one tar | zstd
 * object, and restored at widths 2 and 4 in 1.05x and 0.97x of it, before
 * hashing: width 4 stays. What is left of the gap is the NAR hash check (about
 * 0.2 s per 340 MB each way on 2 cores), not the packs.
 *
 * Saves compress one pack a core, each zstd on its share of them: on 2 cores,
 * six packs of 340 MB, four at once with `zstd -T0` each, took 3.2-3.8
 * core-seconds and 1.63-1.94 s; two at once with `zstd -T1`, 2.7-3.1 and
 * 1.44-1.60 s, as one `tar | zstd -T0` of them all (2.7-3.5, 1.42-1.86 s).
 * More zstd threads than cores only evict each other's tables.
 */
export const NEAR: TransferShape = {
  width: 4,
  packBytes: 64 * MiB,
  parts: 1,
  saveWidth: Math.min(4, CORES)
}

/** zstd threads for each of `inFlight` archives made at once: the cores shared out, one at least. */
export function compressThreads(inFlight: number): number {
  return Math.max(1, Math.floor(CORES / Math.max(1, inFlight)))
}

/** `f` over `items`, at most `width` at once; results in the items' order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  width: number,
  f: (item: T, index: number) => Promise<R>
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await f(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker))
  return results
}

/** The staging slot of a pack: the same for a key and its healed variants (keys.ts). */
export function packSlot(key: string): string {
  const m = /-pack-([0-9a-f]{32})/.exec(key)
  return m ? `pack-${m[1]}` : 'entry'
}
