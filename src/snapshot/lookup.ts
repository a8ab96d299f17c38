// Where a restore's packs come from, in order: the snapshot for exactly these
// dependencies; else the package index, when it has an entry for every
// attribute and for the shell; else the index entries there are plus the
// closest snapshot for the rest; else nothing.
import { depsPrefix, packagePrefix, restorePrefixes, SHELL } from '../keys.js'
import type { CacheContext } from './context.js'
import { mapLimit, WIDTH } from '../transfer/pool.js'
import { indexSlot, readEntry, UnreadableEntryError, type Entry } from './entries.js'
import type { PackRef } from './manifest.js'

export type RestoreSource = 'snapshot' | 'packages' | 'partial' | 'none'

export interface Found {
  source: RestoreSource
  /** The exact or closest snapshot, if one was used. */
  snapshot?: Entry
  /** Package index entries read, by attribute (SHELL for the shell's own). */
  index: Map<string, Entry>
  /** Every pack the entries name, each once, in the order found. */
  packs: PackRef[]
  /** Entries that arrived unreadable: the next save must not reuse their keys. */
  broken: string[]
}

export async function findPacks(ctx: CacheContext): Promise<Found> {
  const broken: string[] = []
  const read = async (
    prefix: string,
    fallbacks: string[] = [],
    slot?: string
  ): Promise<Entry | undefined> => {
    try {
      return await readEntry(ctx, prefix, fallbacks, slot)
    } catch (e) {
      if (!(e instanceof UnreadableEntryError)) throw e
      // The closest-snapshot lookup can find the same broken entry again.
      if (!broken.includes(e.key)) {
        ctx.log.warning(`Cache entry ${e.message}. Not using it.`)
        broken.push(e.key)
      }
      return undefined
    }
  }
  const index = new Map<string, Entry>()
  const exact = await read(depsPrefix(ctx.keys))
  if (exact) return found('snapshot', index, broken, exact)

  const attrs = [SHELL, ...ctx.keys.dependencies]
  const entries = await mapLimit(attrs, WIDTH, a => {
    const prefix = packagePrefix(ctx.keys, a)
    return read(prefix, [], indexSlot(prefix))
  })
  attrs.forEach((a, i) => {
    if (entries[i]) index.set(a, entries[i])
  })
  if (index.size === ctx.keys.dependencies.length + 1) return found('packages', index, broken)
  const [first, ...rest] = restorePrefixes(ctx.keys, ctx.userRestoreKeys).slice(1)
  const closest = first === undefined ? undefined : await read(first, rest)
  const source = closest || index.size > 0 ? 'partial' : 'none'
  return found(source, index, broken, closest)
}

function found(
  source: RestoreSource,
  index: Map<string, Entry>,
  broken: string[],
  snapshot?: Entry
): Found {
  const packs = new Map<string, PackRef>()
  for (const e of [...index.values(), ...(snapshot ? [snapshot] : [])]) {
    for (const p of e.manifest.packs) if (!packs.has(p.key)) packs.set(p.key, p)
  }
  return { source, index, packs: [...packs.values()], broken, ...(snapshot ? { snapshot } : {}) }
}

/** Human words for the log and the summary. */
export function describeSource(f: Pick<Found, 'source' | 'snapshot' | 'index'>): string {
  switch (f.source) {
    case 'snapshot':
      return `the snapshot for these dependencies, ${f.snapshot!.key}`
    case 'packages':
      return `the package index (${f.index.size} entries)`
    case 'partial': {
      const attrs = [...f.index.keys()].filter(a => a !== SHELL)
      return (
        [
          attrs.length > 0 ? `the package index for ${attrs.join(' ')}` : '',
          f.index.has(SHELL) ? "the shell's index entry" : '',
          f.snapshot ? `the closest snapshot, ${f.snapshot.key}` : ''
        ]
          .filter(Boolean)
          .join(', ') || 'nothing'
      )
    }
    default:
      return 'nothing'
  }
}
