// Fetching a snapshot's packs as untrusted input: each is downloaded, checked
// for shape, then for content (every path it would add against its row's NAR
// hash, and signatures where keys are trusted) while the next one downloads.
// Nothing touches the store here.
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { NixDb } from '../db/index.js'
import { CacheError, message } from '../errors.js'
import { removeTree } from '../store/fsops.js'
import { BadPackError, checkPack, storeOf, type PackInfo } from '../store/pack-dir.js'
import { mapLimit, packSlot } from '../transfer/pool.js'
import { NarPool } from '../trust/nar-pool.js'
import { untrusted } from '../trust/verify.js'
import { shapeOf, type CacheContext } from './context.js'
import type { PackRef } from './manifest.js'

export interface Fetched {
  ref: PackRef
  dir: string
  info: PackInfo
  /** It carries Realisations rows. */
  realisations: boolean
}

export interface FetchOutcome {
  fetched: Fetched[]
  /** Packs the cache no longer has (evicted). */
  lost: Set<string>
  /** Packs found broken (shape, contents, signatures): the next save replaces them. */
  broken: Set<string>
  /** Good packs left out because they need paths of a lost or broken one. */
  skipped: Set<string>
}

interface Candidate extends Fetched {
  external: string[]
  /** Why its paths cannot be trusted; undefined when they can. */
  verdict: Promise<string | undefined>
}

/**
 * Downloads and checks the `needed` packs. A pack that is gone or broken is left
 * out with every pack that needs its paths, each with one warning; the rest is
 * returned in an order where every external reference is valid here or held by
 * an earlier returned pack.
 */
export async function fetchPacks(
  ctx: CacheContext,
  needed: readonly PackRef[],
  valid: ReadonlySet<string>
): Promise<FetchOutcome> {
  const pool = new NarPool()
  if (needed.length > 0) pool.warm()
  try {
    return await fetchWith(ctx, needed, valid, pool)
  } finally {
    await pool.close()
  }
}

async function fetchWith(
  ctx: CacheContext,
  needed: readonly PackRef[],
  valid: ReadonlySet<string>,
  pool: NarPool
): Promise<FetchOutcome> {
  const out: FetchOutcome = { fetched: [], lost: new Set(), broken: new Set(), skipped: new Set() }
  const gone = new Set<string>()
  const refuse = async (
    set: Set<string>,
    ref: PackRef,
    text: string,
    dir?: string
  ): Promise<void> => {
    set.add(ref.key)
    for (const p of ref.paths) gone.add(p)
    ctx.log.warning(text)
    if (dir) await removeTree(dir)
  }

  // Side by side, the backend's width at a time: each pack through its own staging slot.
  const got = await mapLimit(needed, shapeOf(ctx).width, async (ref, i) => {
    const dir = join(ctx.backend.stageRoot, `pack-${i}`)
    try {
      return { ref, dir, candidate: await download(ctx, ref, dir, valid, pool) }
    } catch (e) {
      // The service failing is not the entry's fault: it is not replaced.
      return { ref, dir, error: message(e), failed: e instanceof CacheError }
    }
  })
  const candidates: Candidate[] = []
  for (const g of got) {
    if (g.failed) {
      const text = `Pack ${g.ref.key} could not be fetched (${g.error}): its ${g.ref.paths.length} paths will be built again.`
      await refuse(out.lost, g.ref, text, g.dir)
    } else if (g.error !== undefined) {
      await refuse(out.broken, g.ref, brokenText(g.ref, g.error), g.dir)
    } else if (g.candidate) candidates.push(g.candidate)
    else {
      await refuse(
        out.lost,
        g.ref,
        `Pack ${g.ref.key} is no longer in the cache (evicted?): its ${g.ref.paths.length} paths will be built again and saved.`
      )
    }
  }

  const available = new Set(valid)
  const ready: Candidate[] = []
  for (const c of candidates) {
    const reason = await c.verdict
    if (reason) await refuse(out.broken, c.ref, brokenText(c.ref, reason), c.dir)
    else ready.push(c)
  }
  // Packs from several entries come in any order: place each once every path
  // it refers to is valid or in a pack placed before it.
  let waiting = ready
  for (let progress = true; progress && waiting.length > 0;) {
    progress = false
    const still: Candidate[] = []
    for (const c of waiting) {
      if (c.external.every(p => available.has(p))) {
        for (const p of c.info.paths) available.add(p)
        out.fetched.push({ ref: c.ref, dir: c.dir, info: c.info, realisations: c.realisations })
        progress = true
      } else still.push(c)
    }
    waiting = still
  }
  // What needs a gone pack's paths is skipped, and so is what needs that.
  for (let more = true; more;) {
    more = false
    for (const c of waiting.filter(w => w.external.some(p => gone.has(p) && !available.has(p)))) {
      waiting = waiting.filter(w => w !== c)
      more = true
      await refuse(
        out.skipped,
        c.ref,
        `Pack ${c.ref.key} needs paths of a pack that is gone or broken: skipping its ${c.ref.paths.length} paths.`,
        c.dir
      )
    }
  }
  for (const c of waiting) {
    const missing = c.external.filter(p => !available.has(p))
    const why = `it refers to paths that are neither in it nor valid: ${missing.slice(0, 3).join(', ')}`
    await refuse(out.broken, c.ref, brokenText(c.ref, why), c.dir)
  }
  return out
}

function brokenText(ref: PackRef, reason: string): string {
  return (
    `Cache entry ${ref.key} is unusable: ${reason}. Its ${ref.paths.length} paths are not restored ` +
    '(the store was not touched for them); the next save replaces the entry.'
  )
}

/** One pack into `dir`, checked for shape, its content check started; undefined when gone. */
async function download(
  ctx: CacheContext,
  ref: PackRef,
  dir: string,
  valid: ReadonlySet<string>,
  pool: NarPool
): Promise<Candidate | undefined> {
  const { backend } = ctx
  const slot = backend.slotDir(packSlot(ref.key))
  await removeTree(slot)
  const got = await backend.restore(slot, ref.key, [])
  if (got !== ref.key) {
    await removeTree(slot)
    return undefined
  }
  await rename(slot, dir)
  const { info, external, realisations } = await checkPack(dir, ctx.layout.storeDir)
  if (info.paths.join('\n') !== ref.paths.join('\n')) {
    throw new BadPackError('its pack.json does not list the paths the snapshot says it holds')
  }
  // Only what would be added: a path valid here keeps its own files and row.
  const rows = NixDb.with(join(dir, 'db.sqlite'), { readonly: true }, db =>
    db.rows(info.paths.filter(p => !valid.has(p)))
  )
  // Hashed right after extraction, on every core, while the next pack downloads
  // (measured: hashing while tar extracts only adds contention on 2 cores).
  // Read later, in order; it never rejects, so nothing is left unhandled meanwhile.
  const verdict = untrusted(storeOf(dir), rows, ctx.trust.trusted, pool).catch((e: unknown) =>
    message(e)
  )
  return { ref, dir, info, realisations, external, verdict }
}
