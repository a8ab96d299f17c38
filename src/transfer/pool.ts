// Transfers in flight at once: packs download (and extract, and start hashing)
// side by side, and upload side by side, a bounded number at a time.

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
}

const MiB = 1024 * 1024

/** A pack split towards `parts` is never smaller than this. */
export const MIN_PART = 16 * MiB

/**
 * Where every call costs a round trip (github). Measured by `npm run
 * bench:transfer` (100 ms round trip, 256 MB in 6 packs, 2 cores): restores
 * took 3.76, 2.43, 2.23 and 2.17 s at widths 1, 2, 4 and 8, saves 7.20, 4.98,
 * 3.61 and 3.15 s, as each pack costs about three round trips that only width
 * hides; and with packs of 16, 32, 64, 128 MiB or one whole pack, restores
 * at width 8 took 3.44, 2.59, 2.17, 2.07 and 2.99 s.
 */
export const DISTANT: TransferShape = { width: 8, packBytes: 128 * MiB, parts: 8 }

/**
 * Where a call costs next to nothing and every pack costs CPU (local, s3 on a
 * nearby gateway). Measured by `npm run bench:cache` on 2 cores: with
 * DISTANT's shape, local restores and saves took 1.31x and 1.87x of tar+zstd,
 * s3 1.58x and 1.52x; with this one, see the README's figures.
 */
export const NEAR: TransferShape = { width: 4, packBytes: 64 * MiB, parts: 1 }

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
