// saveSnapshot: new paths = rows above the watermark, plus every path they
// reference that no restored pack holds; nothing new -> no upload. Otherwise one
// new pack and one new snapshot (restored packs + the new one), or past
// MAX_PACKS one compacted pack.
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { NixDb } from '../db/index.js'
import { healedPackKey, packKey, snapshotKey } from '../keys.js'
import { timed, type Phase } from '../log.js'
import { formatBytes } from '../report-text.js'
import { removeTree } from '../store/fsops.js'
import { withLock } from '../store/lock.js'
import { baseName } from '../store/layout.js'
import { stagePack } from '../store/pack-dir.js'
import { signRow, withSignature, type SigningKey } from '../trust/signatures.js'
import { mismatches } from '../trust/verify.js'
import {
  lockDir,
  lockOptions,
  MAX_PACKS,
  onLocalDb,
  type CacheContext,
  type CacheState
} from './context.js'
import { MANIFEST_FORMAT, writeManifest, type Manifest, type PackRef } from './manifest.js'

export interface SaveReport {
  /** What happened, in a sentence. */
  outcome: string
  snapshotKey?: string
  packKey?: string
  pathsSaved: number
  /** Bytes of the store trees in the new pack. */
  bytesSaved: number
  /** Compressed bytes uploaded, where the backend knows them. */
  archiveBytes?: number
  phases: Phase[]
}

export async function saveSnapshot(ctx: CacheContext, state: CacheState): Promise<SaveReport> {
  return withLock(lockDir(ctx.layout), () => saveLocked(ctx, state), lockOptions(ctx, 'save'))
}

async function saveLocked(ctx: CacheContext, state: CacheState): Promise<SaveReport> {
  const phases: Phase[] = []
  const { layout: lay, log } = ctx
  const nothing = (outcome: string): SaveReport => ({
    outcome,
    pathsSaved: 0,
    bytesSaved: 0,
    phases
  })
  if (!existsSync(lay.dbFile)) return nothing(`No Nix database at ${lay.dbFile}: nothing to save.`)

  const plan = await onLocalDb(ctx, () =>
    planSave(lay.dbFile, lay.storeDir, state, m => log.warning(m))
  )
  const reusable = plan.reusable
  if (plan.paths.length === 0) {
    const unchanged = reusable.length === (state.restoredPacks ?? state.manifest?.packs.length ?? 0)
    if ((state.cacheHit && unchanged) || reusable.length === 0) {
      return nothing('Nothing new in the store: no upload.')
    }
    // Restored through a fallback key, or some packs are gone: record the packs
    // that hold these dependencies under our own key.
    const key = await saveManifest(ctx, phases, reusable)
    return {
      outcome: `No new paths; saved snapshot ${key} for these dependencies.`,
      snapshotKey: key,
      pathsSaved: 0,
      bytesSaved: 0,
      phases
    }
  }

  let paths = plan.paths
  let packs = reusable
  if (reusable.length + 1 > MAX_PACKS) {
    paths = plan.compacted
    packs = []
    log.info(
      `More than ${MAX_PACKS} packs: saving one compacted pack of ${paths.length} paths instead.`
    )
  }
  try {
    paths = await onLocalDb(ctx, () => withoutAltered(ctx, phases, paths))
    if (paths.length === 0) return nothing('Every new path differs from its row: nothing saved.')
    return await savePack(ctx, phases, paths, packs, new Set(state.broken ?? []))
  } finally {
    await removeTree(ctx.backend.stageRoot)
  }
}

/**
 * A pack says what its paths' NAR hashes are, and restores check it: never
 * upload a path whose files no longer match its row (changed in place, say).
 * Such paths are left out with every path that refers to them.
 */
async function withoutAltered(
  ctx: CacheContext,
  phases: Phase[],
  paths: string[]
): Promise<string[]> {
  const lay = ctx.layout
  const db = NixDb.open(lay.dbFile, { readonly: true })
  try {
    const bad = await timed(phases, 'check', () => mismatches(lay.storeDir, db.rows(paths)))
    phases.at(-1)!.paths = paths.length
    if (bad.length === 0) return paths
    const drop = new Set(db.referrersClosure(bad.map(b => b.path)))
    ctx.log.warning(
      `${bad.length} path(s) differ from what the Nix database says of them (${bad[0]!.reason}); ` +
        `not saving them or the ${drop.size - bad.length} path(s) that refer to them. ` +
        '`nix-store --verify --check-contents --repair` can mend them.'
    )
    return paths.filter(p => !drop.has(p))
  } finally {
    db.close()
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

/** Stages and uploads one pack of `paths`, then a snapshot of `packs` and it. */
async function savePack(
  ctx: CacheContext,
  phases: Phase[],
  paths: string[],
  packs: PackRef[],
  broken: ReadonlySet<string>
): Promise<SaveReport> {
  const { backend, layout: lay, log } = ctx
  let key = packKey(ctx.keys, paths)
  await removeTree(backend.stageRoot)
  const info = await timed(phases, 'stage', async () => {
    const staged = await stagePack(lay, paths, backend.entryDir)
    if (ctx.trust.signingKey) signPack(backend.entryDir, ctx.trust.signingKey)
    return staged
  })
  phases.at(-1)!.paths = paths.length
  phases.at(-1)!.bytes = info.bytes
  const trees = { storeDir: lay.storeDir, names: info.paths.map(baseName) }
  let outcome = await timed(phases, 'upload pack', () => backend.save(backend.entryDir, key, trees))
  if (outcome.result === 'exists' && broken.has(key)) {
    // The restore found this entry broken or could not get it: replace it where
    // the backend can; elsewhere save the same paths under a new key.
    const old = key
    if (!backend.canReplace) key = healedPackKey(key)
    outcome = await timed(phases, 'upload pack', () =>
      backend.save(backend.entryDir, key, trees, { replace: backend.canReplace })
    )
    log.info(
      `Pack ${old} was broken or unreadable when restored: ` +
        (key === old ? 'replaced it.' : `saved its paths again as ${key}.`)
    )
  }
  log.info(
    outcome.result === 'saved'
      ? `Saved pack ${key}: ${paths.length} paths, ${formatBytes(info.bytes)}${outcome.archiveBytes ? ` (${formatBytes(outcome.archiveBytes)} compressed)` : ''}`
      : `Pack ${key} is already in the cache.`
  )
  const snapshot = await saveManifest(ctx, phases, [...packs, { key, paths: info.paths }])
  const saved = outcome.result === 'saved'
  return {
    outcome: saved
      ? `Saved ${paths.length} new paths as pack ${key}; snapshot ${snapshot}.`
      : `The ${paths.length} new paths were already in the cache as pack ${key}; snapshot ${snapshot}.`,
    snapshotKey: snapshot,
    packKey: key,
    pathsSaved: saved ? paths.length : 0,
    bytesSaved: saved ? info.bytes : 0,
    ...(outcome.archiveBytes !== undefined ? { archiveBytes: outcome.archiveBytes } : {}),
    phases
  }
}

interface Plan {
  /** Paths for the new pack: closure of this job's paths, less what restored packs hold. */
  paths: string[]
  /** Restored packs whose paths are all still valid: the new snapshot keeps them. */
  reusable: PackRef[]
  /** Everything the snapshot needs, for a compacted pack. */
  compacted: string[]
}

function planSave(
  dbFile: string,
  storeDir: string,
  state: CacheState,
  warn: (m: string) => void
): Plan {
  return NixDb.with(dbFile, { readonly: true }, db => {
    const packs = state.manifest?.packs ?? []
    const valid = new Set(db.validAmong(packs.flatMap(p => p.paths)))
    const reusable = packs.filter(p => p.paths.every(x => valid.has(x)))
    const held = new Set(reusable.flatMap(p => p.paths))
    const fresh = db.pathsSince(state.watermark)
    const onDisk = (paths: string[]): string[] => withoutMissing(db, storeDir, paths, warn)
    const paths = onDisk(db.closure(fresh).filter(p => !held.has(p)))
    const compacted = onDisk(db.closure([...held, ...paths]))
    return { paths, reusable, compacted }
  })
}

/** Drops paths whose folder is gone, and every path that refers to one of them. */
function withoutMissing(
  db: NixDb,
  storeDir: string,
  paths: string[],
  warn: (m: string) => void
): string[] {
  const missing = paths.filter(p => !existsSync(join(storeDir, baseName(p))))
  if (missing.length === 0) return paths
  const drop = new Set(db.referrersClosure(missing))
  warn(
    `${missing.length} registered path(s) have no folder (e.g. ${missing[0]}); ` +
      `not saving them or the ${drop.size - missing.length} path(s) that refer to them.`
  )
  return paths.filter(p => !drop.has(p))
}

async function saveManifest(ctx: CacheContext, phases: Phase[], packs: PackRef[]): Promise<string> {
  const key = snapshotKey(
    ctx.keys,
    packs.map(p => p.key)
  )
  const manifest: Manifest = { format: MANIFEST_FORMAT, packs, createdAt: new Date().toISOString() }
  const { backend } = ctx
  await removeTree(backend.entryDir)
  await mkdir(backend.entryDir, { recursive: true })
  await writeManifest(backend.entryDir, manifest)
  const outcome = await timed(phases, 'upload snapshot', () => backend.save(backend.entryDir, key))
  await removeTree(backend.stageRoot)
  ctx.log.info(
    outcome.result === 'saved'
      ? `Saved snapshot ${key}`
      : `Snapshot ${key} is already in the cache.`
  )
  return key
}
