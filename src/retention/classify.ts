// Which of the cache's keys are ours, and what they are: a snapshot (grouped by
// its dependency set and key), a package index entry (grouped by attribute and
// key), or a pack. Anything else in the cache is never touched.
import { KEY_VERSION } from '../keys.js'

export type Kind = 'snapshot' | 'index' | 'pack'

export interface Classified {
  kind: Kind
  /** The key prefix the entry's newest-first lookup uses (a pack: its key). */
  group: string
}

const V = KEY_VERSION.replace(/[.-]/g, '\\$&')
const PACK = new RegExp(`^${V}-.+-pack-[0-9a-f]{32}(-[0-9a-z]+)?$`)
const INDEX = new RegExp(`^(${V}-index-.+-[0-9a-f]{20}-)[0-9a-z]+$`)
const SNAPSHOT = new RegExp(`^(${V}-.+-[0-9a-f]{20}-)[0-9a-f]{20}-[0-9a-z]+$`)

export function classify(key: string): Classified | undefined {
  if (PACK.test(key)) return { kind: 'pack', group: key }
  const index = INDEX.exec(key)
  if (index) return { kind: 'index', group: index[1]! }
  const snapshot = SNAPSHOT.exec(key)
  if (snapshot) return { kind: 'snapshot', group: snapshot[1]! }
  return undefined
}
