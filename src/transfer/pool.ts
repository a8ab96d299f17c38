// Transfers in flight at once: packs download (and extract, and start hashing)
// side by side, and upload side by side, a bounded number at a time.

/**
 * How many transfers at once. Measured by `npm run bench:transfer` (github
 * backend, 100 ms round trip, 256 MB in 6 packs, 2 cores): restores took
 * 3.76, 2.43, 2.23 and 2.17 s at widths 1, 2, 4 and 8, saves 7.20, 4.98, 3.61
 * and 3.15 s: each pack costs about three round trips, which only width hides.
 */
export const WIDTH = 8

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
