// What a save needs to know of the location: the restored packs still whole,
// what the job built, and each consumer's closure (an attribute, the shell),
// from the roots Nix named (roots.ts) and the location's database.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { NixDb } from '../db/index.js'
import { SHELL } from '../keys.js'
import type { CacheState } from '../snapshot/context.js'
import type { PackRef } from '../snapshot/manifest.js'
import { baseName } from '../store/layout.js'
import type { Needs } from './publish.js'
import type { Roots } from './roots.js'

/** A consumer without an index entry of its own. */
const ANON = ':job'

/** The consumers, each without the paths in `drop`. */
export function without(
  consumers: ReadonlyMap<string, ReadonlySet<string>>,
  drop: ReadonlySet<string>
): Map<string, Set<string>> {
  return new Map([...consumers].map(([c, s]) => [c, new Set([...s].filter(p => !drop.has(p)))]))
}

/** Every path some consumer needs. */
export function union(consumers: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  return [...new Set([...consumers.values()].flatMap(c => [...c]))]
}

export interface Local {
  /** Restored packs whose paths are all still valid. */
  reusable: PackRef[]
  /** Paths this job added that are not derivations or their sources and no restored pack holds. */
  built: string[]
}

/**
 * What this job added besides what evaluation writes (store derivations, and the
 * sources they refer to): when that is nothing and the restore was a full hit,
 * the save need not ask Nix anything.
 */
export function readLocal(dbFile: string, state: CacheState): Local {
  return NixDb.with(dbFile, { readonly: true }, db => {
    const packs = state.manifest?.packs ?? []
    const valid = new Set(db.validAmong(packs.flatMap(p => p.paths)))
    const reusable = packs.filter(p => p.paths.every(x => valid.has(x)))
    const held = new Set(reusable.flatMap(p => p.paths))
    const fresh = db.pathsSince(state.watermark)
    const drvs = fresh.filter(p => p.endsWith('.drv'))
    const sources = new Set(db.rows(drvs).flatMap(r => r.references))
    const built = fresh.filter(p => !p.endsWith('.drv') && !sources.has(p) && !held.has(p))
    return { reusable, built }
  })
}

export interface LocalNeeds extends Needs {
  /** NAR bytes of every path a consumer needs and of every restored path. */
  sizes: ReadonlyMap<string, number>
}

/**
 * Each consumer's closure: SHELL and every attribute whose output Nix named and
 * is valid here; without roots, one consumer, everything this job added and
 * every restored path. Paths without a folder are left out with their referrers.
 */
export function needsOf(
  dbFile: string,
  storeDir: string,
  roots: Roots | undefined,
  local: Local,
  warn: (m: string) => void
): LocalNeeds {
  return NixDb.with(dbFile, { readonly: true }, db => {
    const named = new Map<string, string[]>()
    // Attributes the shell's inputs could not be told apart by (roots.ts) are
    // one consumer, ANON, without index entries.
    if (roots && roots.attrs.size === 0) named.set(ANON, roots.shell)
    else if (roots) {
      named.set(SHELL, roots.shell)
      for (const [attr, r] of roots.attrs) named.set(attr, r)
    }
    let consumers = new Map<string, Set<string>>()
    const rootsOf = new Map<string, string[]>()
    for (const [c, r] of named) {
      const valid = db.validAmong(r)
      if (valid.length === 0 && c !== SHELL) continue
      consumers.set(c, new Set(db.closure(valid)))
      if (c !== ANON) rootsOf.set(c, valid)
    }
    const restored = local.reusable.flatMap(p => p.paths)
    if (!roots) {
      consumers.set(ANON, new Set(db.closure([...local.built, ...restored])))
    }
    const missing = union(consumers).filter(p => !existsSync(join(storeDir, baseName(p))))
    if (missing.length > 0) {
      const drop = new Set(db.referrersClosure(missing))
      warn(
        `${missing.length} registered path(s) have no folder (e.g. ${missing[0]}); ` +
          `not saving them or the ${drop.size - missing.length} path(s) that refer to them.`
      )
      consumers = without(consumers, drop)
    }
    const sizes = db.narSizes([...new Set([...union(consumers), ...restored])])
    return { consumers, roots: rootsOf, sizes }
  })
}
