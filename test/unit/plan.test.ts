import { describe, expect, it } from 'vitest'
import { packsFor, planPacks, type PlanInput } from '../../src/packages/plan.js'

const MB = 1024 * 1024
const p = (name: string): string => `/nix/store/${'a'.repeat(32)}-${name}`

function input(o: {
  consumers: Record<string, string[]>
  sizes: Record<string, number>
  packs?: Record<string, string[]>
  maxPacks?: number
  parts?: number
}): PlanInput {
  return {
    consumers: new Map(Object.entries(o.consumers).map(([k, v]) => [k, new Set(v.map(p))])),
    sizes: new Map(Object.entries(o.sizes).map(([k, v]) => [p(k), v])),
    packs: Object.entries(o.packs ?? {}).map(([key, paths]) => ({
      key,
      paths: paths.map(p).sort()
    })),
    minPack: MB,
    maxPacks: o.maxPacks ?? 8,
    maxPack: 64 * MB,
    parts: o.parts ?? 1,
    minPart: 16 * MB
  }
}
const names = (paths: string[]): string[] => paths.map(x => x.slice(44)).sort()

describe('planPacks', () => {
  it('groups new paths by the consumers that need them; small groups together', () => {
    const plan = planPacks(
      input({
        consumers: { ':shell': ['bash', 'libc'], gcc: ['gcc', 'libc'], ffmpeg: ['ffmpeg', 'libc'] },
        sizes: { bash: 10, libc: 5 * MB, gcc: 20 * MB, ffmpeg: 15 * MB }
      })
    )
    expect(plan.keep).toEqual([])
    expect(plan.fresh.map(names).sort()).toEqual([['bash'], ['ffmpeg'], ['gcc'], ['libc']])
  })

  it('does not inherit a restored pack this set does not need', () => {
    const plan = planPacks(
      input({
        consumers: { figlet: ['figlet'] },
        sizes: { figlet: 10, big: 24 * MB },
        packs: { big: ['big'] }
      })
    )
    expect(plan.keep).toEqual([])
    expect(plan.splits).toEqual([])
    expect(plan.fresh.map(names)).toEqual([['figlet']])
  })

  it('splits a restored pack into the needed part and the rest when the rest is worth a pack', () => {
    const plan = planPacks(
      input({
        consumers: { bigbin: ['bigbin'] },
        sizes: { bigbin: 13 * MB, bigapp: 3 * MB },
        packs: { app: ['bigapp', 'bigbin'] }
      })
    )
    expect(plan.splits).toHaveLength(1)
    expect(plan.splits[0]!.parts.map(names)).toEqual([['bigbin'], ['bigapp']])
    expect(plan.fresh).toEqual([])
  })

  it('names a pack whole when what this set does not need is small', () => {
    const plan = planPacks(
      input({
        consumers: { bigbin: ['bigbin'] },
        sizes: { bigbin: 13 * MB, readme: 1000 },
        packs: { app: ['readme', 'bigbin'] }
      })
    )
    expect(plan.keep.map(k => k.key)).toEqual(['app'])
    expect(plan.splits).toEqual([])
  })

  it('names a pack once when another pack already held its paths', () => {
    const plan = planPacks(
      input({
        consumers: { a: ['a', 'b'] },
        sizes: { a: 2 * MB, b: 2 * MB },
        packs: { one: ['a', 'b'], two: ['a'] }
      })
    )
    expect(plan.keep.map(k => k.key)).toEqual(['one'])
  })

  it('past maxPacks, packs the small packs and groups together', () => {
    const consumers: Record<string, string[]> = {}
    const sizes: Record<string, number> = {}
    const packs: Record<string, string[]> = {}
    for (let i = 0; i < 6; i++) {
      consumers[`old${i}`] = [`old${i}`]
      sizes[`old${i}`] = 100
      packs[`k${i}`] = [`old${i}`]
      consumers[`new${i}`] = [`new${i}`]
      sizes[`new${i}`] = i === 0 ? 2 * MB : 100
    }
    consumers.big = ['big']
    sizes.big = 50 * MB
    packs.kbig = ['big']
    const plan = planPacks(input({ consumers, sizes, packs, maxPacks: 8 }))
    expect(plan.keep.map(k => k.key)).toEqual(['kbig'])
    expect(plan.fresh).toHaveLength(1)
    expect(plan.fresh[0]).toHaveLength(12)
  })
})

describe('planPacks, large groups', () => {
  it('writes a group larger than maxPack as packs of whole paths', () => {
    const paths = ['a', 'b', 'c', 'd', 'e']
    const plan = planPacks(
      input({
        consumers: { big: paths },
        sizes: Object.fromEntries(paths.map(x => [x, 30 * MB]))
      })
    )
    // Three packs (150 MB past 64), largest first into the smallest.
    expect(plan.fresh.map(names)).toEqual([['a', 'd'], ['b', 'e'], ['c']])
  })

  it('splits a large group towards `parts` packs of about equal bytes, none under minPart', () => {
    const libs = Array.from({ length: 8 }, (_, i) => `lib${i}`)
    const sizes: Record<string, number> = Object.fromEntries(libs.map(x => [x, 31 * MB]))
    sizes.prog = 1000
    const eight = planPacks(input({ consumers: { big: [...libs, 'prog'] }, sizes, parts: 8 }))
    expect(eight.fresh).toHaveLength(8)
    expect(eight.fresh.map(names).flat().sort()).toEqual([...libs, 'prog'].sort())
    expect(eight.fresh.every(f => f.length <= 2)).toBe(true)
    // Every runner makes the same packs of the same paths.
    const again = planPacks(
      input({ consumers: { big: ['prog', ...libs].reverse() }, sizes, parts: 8 })
    )
    expect(again.fresh).toEqual(eight.fresh)
    // 40 MB: two packs of at least 16 MB, not eight.
    const small = Object.fromEntries(libs.map(x => [x, 5 * MB]))
    const two = planPacks(input({ consumers: { s: libs }, sizes: small, parts: 8 }))
    expect(two.fresh.map(f => f.length)).toEqual([4, 4])
  })

  it('keeps a path larger than maxPack whole, in a pack of its own', () => {
    const plan = planPacks(
      input({ consumers: { big: ['huge', 'small'] }, sizes: { huge: 100 * MB, small: 10 * MB } })
    )
    expect(plan.fresh.map(names)).toEqual([['huge'], ['small']])
  })
})

describe('packsFor', () => {
  it('names the packs holding any path of a closure, in order', () => {
    const packs = [
      { key: 'x', paths: [p('a')] },
      { key: 'y', paths: [p('b'), p('c')] },
      { key: 'z', paths: [p('d')] }
    ]
    expect(packsFor(packs, new Set([p('c'), p('a')])).map(k => k.key)).toEqual(['x', 'y'])
  })
})
