// Retention's choices (src/retention/plan.ts), on listings made up here: the
// rules are pure; test/integration/prune.test.ts runs them on real caches.
import { describe, expect, it } from 'vitest'
import { classify } from '../../src/retention/classify.js'
import { chooseEntries, choosePacks, items, type Rules } from '../../src/retention/plan.js'
import { depsPrefix, packageKey, packKey, snapshotKey, type KeyContext } from '../../src/keys.js'
import { parseConfig } from '../../src/config.js'

const H = 3_600_000
const D = 24 * H
const NOW = 100 * D
const ctx = (deps: string[]): KeyContext => ({
  os: 'linux',
  arch: 'x64',
  nixPortable: 'v012',
  dependencies: deps,
  userKey: ''
})
const path = (n: number): string => `/nix/store/${String(n).padStart(32, 'a')}-p${n}`
const pack = (n: number): string => packKey(ctx([]), [path(n)])
const rules: Rules = { keepSnapshots: 2, maxAgeMs: 30 * D, graceMs: H }

describe('classify', () => {
  it('knows snapshots, index entries and packs, and nothing else', () => {
    const snap = snapshotKey(ctx(['gcc']), [pack(1)])
    expect(classify(snap)).toEqual({ kind: 'snapshot', group: depsPrefix(ctx(['gcc'])) })
    expect(classify(packageKey(ctx([]), 'gcc'))?.kind).toBe('index')
    expect(classify(pack(1))).toEqual({ kind: 'pack', group: pack(1) })
    expect(classify(`${pack(1)}-mg3x1abc12`)?.kind).toBe('pack')
    expect(classify('node-modules-linux-abc')).toBeUndefined()
    // A custom nix-portable's digest in the key does not confuse the groups.
    const custom = { ...ctx(['gcc']), nixPortable: 'ab'.repeat(10) }
    expect(classify(snapshotKey(custom, [pack(1)]))?.group).toBe(depsPrefix(custom))
    expect(classify(packageKey(custom, 'gcc'))?.kind).toBe('index')
  })
})

/** A snapshot of `deps` saved `age` ago naming `packs`. */
function snap(deps: string[], age: number, packs: number[], bytes = 1000) {
  return { key: snapshotKey(ctx(deps), packs.map(pack)), bytes, modified: NOW - age, packs }
}

describe('chooseEntries and choosePacks', () => {
  it('keeps the newest N of each set; a pack shared with a kept snapshot survives', () => {
    const a = [snap(['a'], 3 * D, [1, 2]), snap(['a'], 2 * D, [2, 3]), snap(['a'], 1 * D, [3, 4])]
    const b = [snap(['b'], 5 * D, [1])]
    const listing = [
      ...a,
      ...b,
      ...[1, 2, 3, 4].map(n => ({ key: pack(n), bytes: 10, modified: NOW - 9 * D }))
    ]
    const all = items(listing)
    const e = chooseEntries(all, new Map(), rules, NOW)
    expect(e.drop.map(d => d.key)).toEqual([a[0]!.key])
    const names = new Map([...a, ...b].map(s => [s.key, s.packs.map(pack)]))
    const p = choosePacks(
      e.keep,
      names,
      all.filter(i => i.kind === 'pack'),
      new Map(),
      rules,
      NOW
    )
    // Pack 1 is named by b, pack 2 by a kept snapshot of a: nothing is left unnamed.
    expect(p.packs).toEqual([])
    const dropB = chooseEntries(all, new Map(), { ...rules, keepSnapshots: 1 }, NOW)
    const p2 = choosePacks(
      dropB.keep,
      names,
      all.filter(i => i.kind === 'pack'),
      new Map(),
      rules,
      NOW
    )
    expect(dropB.drop.map(d => d.key).sort()).toEqual([a[0]!.key, a[1]!.key].sort())
    expect(p2.packs.map(d => d.key)).toEqual([pack(2)])
  })

  it('drops a set unused for max-age whole, unless a restore marked it', () => {
    const old = [snap(['a'], 40 * D, [1]), snap(['a'], 35 * D, [1])]
    const all = items(old)
    expect(chooseEntries(all, new Map(), rules, NOW).drop).toHaveLength(2)
    const marked = new Map([[depsPrefix(ctx(['a'])), NOW - 2 * D]])
    expect(chooseEntries(all, marked, rules, NOW).drop).toHaveLength(0)
  })

  it('never drops anything younger than the grace period', () => {
    const fresh = [snap(['a'], 30_000, [1]), snap(['a'], 20_000, [2]), snap(['a'], 10_000, [3])]
    const all = items([...fresh, { key: pack(9), bytes: 5, modified: NOW - 60_000 }])
    const e = chooseEntries(all, new Map(), { ...rules, maxAgeMs: 0, keepSnapshots: 1 }, NOW)
    expect(e.drop).toEqual([])
    const p = choosePacks(
      e.keep,
      new Map(),
      all.filter(i => i.kind === 'pack'),
      new Map(),
      rules,
      NOW
    )
    expect(p.packs).toEqual([])
    // A pack a save marked (reused) is young too.
    const oldPack = items([{ key: pack(8), bytes: 5, modified: NOW - 9 * D }])
    const marks = new Map([[pack(8), NOW - 60_000]])
    expect(choosePacks([], new Map(), oldPack, marks, rules, NOW).packs).toEqual([])
    expect(choosePacks([], new Map(), oldPack, new Map(), rules, NOW).packs).toHaveLength(1)
  })

  it('meets a budget by dropping the least recently used sets whole', () => {
    const a = snap(['a'], 10 * D, [1], 100)
    const b = snap(['b'], 5 * D, [2], 100)
    const c = snap(['c'], 1 * D, [3], 100)
    const packs = [1, 2, 3].map(n => ({ key: pack(n), bytes: 1000, modified: NOW - 10 * D }))
    const all = items([a, b, c, ...packs])
    const names = new Map([a, b, c].map(s => [s.key, s.packs.map(pack)]))
    const e = chooseEntries(all, new Map(), rules, NOW)
    const budget = { ...rules, maxSizeBytes: 2300 }
    const p = choosePacks(
      e.keep,
      names,
      all.filter(i => i.kind === 'pack'),
      new Map(),
      budget,
      NOW
    )
    expect(p.drop.map(d => d.key)).toEqual([a.key])
    expect(p.packs.map(d => d.key)).toEqual([pack(1)])
    expect(p.keptBytes).toBe(2200)
    expect(p.overBudget).toBe(false)
    // b was restored a moment ago: c, saved a day ago and not restored since, goes first.
    const used = new Map([[depsPrefix(ctx(['b'])), NOW - 1000]])
    const tight = { ...rules, maxSizeBytes: 1200 }
    const q = choosePacks(
      e.keep,
      names,
      all.filter(i => i.kind === 'pack'),
      used,
      tight,
      NOW
    )
    expect(q.drop.map(d => d.key)).toEqual([a.key, c.key])
  })

  it('orders and shields a set by when each entry was saved, not when it was last read (GitHub)', () => {
    const older = snap(['a'], 3 * D, [1])
    const newer = snap(['a'], 2 * D, [1])
    // The older one was read a minute ago (a purge reads what it keeps).
    const all = items([
      { ...older, created: older.modified, modified: NOW - 60_000 },
      { ...newer, created: newer.modified }
    ])
    const e = chooseEntries(all, new Map(), { ...rules, keepSnapshots: 1 }, NOW)
    expect(e.drop.map(d => d.key)).toEqual([older.key])
  })

  it('counts only distinct entries: one holding the same paths as a newer one goes', () => {
    const first = snap(['a'], 3 * D, [1])
    const again = snap(['a'], 2 * D, [2]) // the same paths, packed anew (a split)
    const other = snap(['a'], 4 * D, [3])
    const all = items([first, again, other])
    const contents = new Map([
      [first.key, 'paths-x'],
      [again.key, 'paths-x'],
      [other.key, 'paths-y']
    ])
    const e = chooseEntries(all, new Map(), rules, NOW, () => true, contents)
    expect(e.drop).toEqual([
      expect.objectContaining({ key: first.key, reason: expect.stringMatching(/same paths/) })
    ])
    expect(e.keep.map(k => k.key).sort()).toEqual([again.key, other.key].sort())
  })

  it('judges only the groups in scope', () => {
    const all = items([
      snap(['a'], 3 * D, [1]),
      snap(['a'], 2 * D, [1]),
      snap(['a'], D, [1]),
      snap(['b'], 3 * D, [1]),
      snap(['b'], 2 * D, [1]),
      snap(['b'], D, [1])
    ])
    const own = depsPrefix(ctx(['a']))
    const e = chooseEntries(all, new Map(), rules, NOW, g => g === own)
    expect(e.drop.map(d => classify(d.key)?.group)).toEqual([own])
  })
})

describe('retention inputs', () => {
  const parse = (given: Record<string, string>) =>
    parseConfig(n => ({ systemDependencies: 'gcc', ...given })[n] ?? '', { HOME: '/h' }).retention

  it('reads durations and sizes', () => {
    expect(parse({})).toEqual({
      prune: false,
      keepSnapshots: 2,
      maxAgeMs: 30 * D,
      graceMs: H,
      dryRun: false
    })
    expect(
      parse({ 'max-age': '45m', grace: '0', 'max-size': '10G', 'keep-snapshots': '5' })
    ).toMatchObject({
      maxAgeMs: 45 * 60_000,
      graceMs: 0,
      maxSizeBytes: 10 * 1024 ** 3,
      keepSnapshots: 5
    })
  })

  it.each([
    ['max-age', '7 days', '`max-age`'],
    ['grace', '15', '`grace`'],
    ['max-size', '1.5G', '`max-size`'],
    ['keep-snapshots', '0', '`keep-snapshots`']
  ])('refuses %s %s, naming the input', (name, value, named) => {
    expect(() => parse({ [name]: value })).toThrow(named)
  })
})
