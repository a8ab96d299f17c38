// Which packs a save names, keeps, splits and writes, so that a snapshot holds
// its dependency set's closure and little else. Pure: closures and sizes in,
// path lists out (test/unit/plan.test.ts).
//
// * A restored pack this set does not need at all is not inherited.
// * A restored pack it needs only part of is split in two, the needed part (a
//   layer the sets share) and the rest, when the rest is worth a pack of its
//   own (`minPack` bytes); otherwise it is named whole.
// * New paths are grouped by which consumers (attributes, the shell) need
//   them, so that an attribute's index entry names only its own closure;
//   groups under `minPack` go together in one pack.
import type { PackRef } from '../snapshot/manifest.js'

export interface PlanInput {
  /** Consumer (an attribute, or the shell) -> its closure. */
  consumers: ReadonlyMap<string, ReadonlySet<string>>
  /** NAR bytes of every needed or restored path. */
  sizes: ReadonlyMap<string, number>
  /** Restored packs whose paths are all valid here, in snapshot order. */
  packs: readonly PackRef[]
  /** A group smaller than this is not a pack of its own. */
  minPack: number
  /** More packs than this in one snapshot: the small ones are packed together. */
  maxPacks: number
  /**
   * A new group larger than this is written as several packs (of whole paths),
   * so that one's extraction overlaps the next one's download.
   */
  maxPack: number
  /**
   * A new group is written as up to this many packs (the transfer width), of
   * about equal bytes and each at least `minPart`, so that a restore fetches
   * them in one wave, side by side.
   */
  parts: number
  minPart: number
}

export interface Split {
  from: PackRef
  /** The part this set needs, then the rest. */
  parts: [string[], string[]]
}

export interface PackPlan {
  /** Restored packs named as they are. */
  keep: PackRef[]
  splits: Split[]
  /** New packs' path lists. */
  fresh: string[][]
}

export function planPacks(input: PlanInput): PackPlan {
  const { consumers, packs, minPack } = input
  const bytes = (paths: Iterable<string>): number => {
    let n = 0
    for (const p of paths) n += input.sizes.get(p) ?? 0
    return n
  }
  const needed = new Set<string>()
  for (const c of consumers.values()) for (const p of c) needed.add(p)

  const held = new Set<string>()
  const keep: PackRef[] = []
  const splits: Split[] = []
  for (const pack of packs) {
    if (pack.paths.every(p => held.has(p))) continue
    const part = pack.paths.filter(p => needed.has(p))
    if (part.length === 0) continue
    const rest = pack.paths.filter(p => !needed.has(p))
    if (bytes(rest) < minPack) keep.push(pack)
    else splits.push({ from: pack, parts: [part, rest] })
    for (const p of part) held.add(p)
  }

  let fresh = groupByConsumers(
    [...needed].filter(p => !held.has(p)).sort(),
    consumers,
    minPack,
    bytes
  )
  if (keep.length + splits.length + fresh.length > input.maxPacks) {
    // Many small packs cost more per restore than their bytes: one pack of them.
    const small = keep.filter(k => bytes(k.paths) < minPack)
    const merged = [...small.flatMap(k => k.paths.filter(p => needed.has(p))), ...fresh.flat()]
    if (small.length + fresh.length > 1) {
      const smallKeys = new Set(small.map(k => k.key))
      keep.splice(0, keep.length, ...keep.filter(k => !smallKeys.has(k.key)))
      fresh = [[...new Set(merged)].sort()]
    }
  }
  fresh = fresh.flatMap(g => parts(g, input, bytes))
  return { keep, splits, fresh }
}

/**
 * `paths` as packs of whole paths and about equal bytes: enough that each is
 * near `maxPack` at most, and up to `parts` while each keeps `minPart`. Largest
 * path first into the smallest pack, ties by name: every runner with the same
 * paths makes the same packs, so the same keys.
 */
function parts(
  paths: readonly string[],
  o: Pick<PlanInput, 'maxPack' | 'parts' | 'minPart'>,
  bytes: (paths: Iterable<string>) => number
): string[][] {
  const total = bytes(paths)
  const n = Math.min(
    paths.length,
    Math.max(1, Math.ceil(total / o.maxPack), Math.min(o.parts, Math.floor(total / o.minPart)))
  )
  if (n <= 1) return [[...paths]]
  const bins = Array.from({ length: n }, () => ({ paths: [] as string[], size: 0 }))
  const size = new Map(paths.map(p => [p, bytes([p])]))
  const order = [...paths].sort((a, b) => size.get(b)! - size.get(a)! || (a < b ? -1 : 1))
  for (const p of order) {
    const bin = bins.reduce((best, b) => (b.size < best.size ? b : best))
    bin.paths.push(p)
    bin.size += size.get(p)!
  }
  return bins.map(b => b.paths.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1))
}

/** Paths grouped by the set of consumers that need them; small groups together. */
function groupByConsumers(
  paths: readonly string[],
  consumers: ReadonlyMap<string, ReadonlySet<string>>,
  minPack: number,
  bytes: (paths: Iterable<string>) => number
): string[][] {
  const groups = new Map<string, string[]>()
  const names = [...consumers.keys()].sort()
  for (const p of paths) {
    const sig = names.filter(n => consumers.get(n)!.has(p)).join('\n')
    let g = groups.get(sig)
    if (!g) groups.set(sig, (g = []))
    g.push(p)
  }
  const big: string[][] = []
  const small: string[] = []
  for (const g of groups.values()) {
    if (bytes(g) >= minPack) big.push(g)
    else small.push(...g)
  }
  if (small.length > 0) big.push(small.sort())
  return big.sort((a, b) => (a[0]! < b[0]! ? -1 : 1))
}

/** The packs of `named` that hold any path of `closure`, in order. */
export function packsFor(named: readonly PackRef[], closure: ReadonlySet<string>): PackRef[] {
  return named.filter(p => p.paths.some(x => closure.has(x)))
}
