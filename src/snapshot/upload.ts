// One pack out of the runner's store: staged (rows extracted, signed when a
// key is given), uploaded, and, when the restore found its key broken, saved
// again where the backend can replace it or under a new key where it cannot.
import { join } from 'node:path'
import { NixDb } from '../db/index.js'
import { healedPackKey, packKey } from '../keys.js'
import { timed, type Phase } from '../log.js'
import { formatBytes } from '../report-text.js'
import { removeTree } from '../store/fsops.js'
import { baseName } from '../store/layout.js'
import { stagePack } from '../store/pack-dir.js'
import { signRow, withSignature, type SigningKey } from '../trust/signatures.js'
import { packSlot } from '../transfer/pool.js'
import { mismatches } from '../trust/verify.js'
import type { CacheContext } from './context.js'
import type { PackRef } from './manifest.js'

export interface Uploaded {
  ref: PackRef
  saved: boolean
  bytes: number
  archiveBytes?: number
}

/** Stages and uploads one pack of `paths`, compressed on `threads` threads where the backend compresses. */
export async function uploadPack(
  ctx: CacheContext,
  phases: Phase[],
  paths: readonly string[],
  broken: ReadonlySet<string>,
  threads?: number
): Promise<Uploaded> {
  const { backend, layout: lay, log } = ctx
  let key = packKey(ctx.keys, paths)
  const dir = backend.slotDir(packSlot(key))
  await removeTree(dir)
  const info = await timed(phases, 'stage', async () => {
    const staged = await stagePack(lay, paths, dir)
    if (ctx.trust.signingKey) signPack(dir, ctx.trust.signingKey)
    return staged
  })
  phases.at(-1)!.paths = paths.length
  phases.at(-1)!.bytes = info.bytes
  const trees = { storeDir: lay.storeDir, names: info.paths.map(baseName) }
  let outcome = await timed(phases, 'upload pack', () =>
    backend.save(dir, key, trees, { bytes: info.bytes, threads })
  )
  if (outcome.result === 'exists' && broken.has(key)) {
    // The restore found this entry broken or could not get it: replace it where
    // the backend can; elsewhere save the same paths under a new key.
    const old = key
    if (!backend.canReplace) key = healedPackKey(key)
    outcome = await timed(phases, 'upload pack', () =>
      backend.save(dir, key, trees, { replace: backend.canReplace, bytes: info.bytes, threads })
    )
    log.info(
      `Pack ${old} was broken or unreadable when restored: ` +
        (key === old ? 'replaced it.' : `saved its paths again as ${key}.`)
    )
  }
  await removeTree(dir)
  log.info(
    outcome.result === 'saved'
      ? `Saved pack ${key}: ${paths.length} paths, ${formatBytes(info.bytes)}${outcome.archiveBytes ? ` (${formatBytes(outcome.archiveBytes)} compressed)` : ''}`
      : `Pack ${key} is already in the cache.`
  )
  return {
    ref: { key, paths: info.paths },
    saved: outcome.result === 'saved',
    bytes: info.bytes,
    ...(outcome.archiveBytes !== undefined ? { archiveBytes: outcome.archiveBytes } : {})
  }
}

/** Signs every row of the staged pack in `dir` (Nix's narinfo fingerprint). */
function signPack(dir: string, key: SigningKey): void {
  NixDb.with(join(dir, 'db.sqlite'), {}, db => {
    const sigs = new Map<string, string>()
    for (const r of db.rows()) sigs.set(r.path, withSignature(r.sigs, signRow(r, key), key.name))
    db.setSigs(sigs)
  })
}

/**
 * A pack says what its paths' NAR hashes are, and restores check it: never
 * upload a path whose files no longer match its row (changed in place, say).
 * Returns such paths with every path that refers to them.
 */
export async function altered(
  ctx: CacheContext,
  phases: Phase[],
  paths: readonly string[]
): Promise<Set<string>> {
  const lay = ctx.layout
  const db = NixDb.open(lay.dbFile, { readonly: true })
  try {
    const bad = await timed(phases, 'check', () => mismatches(lay.storeDir, db.rows(paths)))
    phases.at(-1)!.paths = paths.length
    if (bad.length === 0) return new Set()
    const drop = new Set(db.referrersClosure(bad.map(b => b.path)))
    ctx.log.warning(
      `${bad.length} path(s) differ from what the Nix database says of them (${bad[0]!.reason}); ` +
        `not saving them or the ${drop.size - bad.length} path(s) that refer to them. ` +
        '`nix-store --verify --check-contents --repair` can mend them.'
    )
    return drop
  } finally {
    db.close()
  }
}
