// Fetching a snapshot's packs: every needed pack downloaded and checked as
// untrusted input before anything touches the store.
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { message } from '../errors.js'
import { removeTree } from '../store/fsops.js'
import { BadPackError, checkPack, type PackInfo } from '../store/pack-dir.js'
import type { CacheContext } from './context.js'
import type { PackRef } from './manifest.js'

export interface Fetched {
  ref: PackRef
  dir: string
  info: PackInfo
  /** It carries Realisations rows. */
  realisations: boolean
}

/**
 * Downloads and checks every needed pack before anything touches the store. A
 * pack the cache no longer has (evicted) is skipped with the packs that need its
 * paths: Nix builds those again and the next save stores them. Anything wrong
 * with a pack that is there makes the whole restore a miss.
 */
export async function fetchPacks(
  ctx: CacheContext,
  needed: PackRef[],
  valid: Set<string>
): Promise<{ fetched: Fetched[]; lostPacks: Set<string> }> {
  const out: Fetched[] = []
  const available = new Set(valid)
  const lost = new Set<string>()
  const lostPacks = new Set<string>()
  for (const [i, ref] of needed.entries()) {
    try {
      await removeTree(ctx.backend.entryDir)
      const got = await ctx.backend.restore(ctx.backend.entryDir, ref.key, [])
      if (got !== ref.key) {
        ctx.log.warning(
          `Pack ${ref.key} is no longer in the cache (evicted?): its ${ref.paths.length} paths ` +
            'will be built again and saved.'
        )
        for (const p of ref.paths) lost.add(p)
        lostPacks.add(ref.key)
        continue
      }
      const dir = join(ctx.backend.stageRoot, `pack-${i}`)
      await rename(ctx.backend.entryDir, dir)
      const { info, external, realisations } = await checkPack(dir)
      if (info.paths.join('\n') !== ref.paths.join('\n')) {
        throw new BadPackError('its pack.json does not list the paths the snapshot says it holds')
      }
      const unknown = external.filter(p => !available.has(p))
      const bad = unknown.filter(p => !lost.has(p))
      if (bad.length > 0) {
        throw new BadPackError(
          `it refers to paths that are neither in it nor valid: ${bad.slice(0, 3).join(', ')}`
        )
      }
      if (unknown.length > 0) {
        ctx.log.warning(
          `Pack ${ref.key} needs paths of a pack that is gone: skipping its ${ref.paths.length} paths.`
        )
        for (const p of ref.paths) lost.add(p)
        lostPacks.add(ref.key)
        await removeTree(dir)
        continue
      }
      for (const p of info.paths) available.add(p)
      out.push({ ref, dir, info, realisations })
    } catch (e) {
      throw Object.assign(new Error(message(e)), { key: ref.key })
    }
  }
  return { fetched: out, lostPacks }
}
