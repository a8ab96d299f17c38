// Last use, recorded cheaply: a restore marks the groups whose entries it used
// (the set's snapshots, each attribute's index entries), a save marks the packs
// it names again without uploading them. A mark that cannot be written is a
// word in the log: retention then judges by save times alone.
import type { Backend } from '../backend/types.js'
import { message } from '../errors.js'
import type { Logger } from '../log.js'
import { mapLimit, WIDTH } from '../transfer/pool.js'
import { classify } from './classify.js'

export async function markUsed(
  backend: Backend,
  log: Logger,
  names: readonly string[]
): Promise<void> {
  const unique = [...new Set(names)]
  await mapLimit(unique, WIDTH, n => backend.markUsed(n)).catch((e: unknown) =>
    log.info(`Could not record the cache entries' last use: ${message(e)}`)
  )
}

/** The groups of the entries a restore read. */
export function groupsOf(keys: readonly string[]): string[] {
  return keys.flatMap(k => {
    const c = classify(k)
    return c && c.kind !== 'pack' ? [c.group] : []
  })
}
