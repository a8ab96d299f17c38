import { join } from 'node:path'
import type { Backend } from '../backend/index.js'
import { retryBusy } from '../db/index.js'
import type { KeyContext } from '../keys.js'
import type { Logger } from '../log.js'
import type { Layout } from '../store/layout.js'
import type { LockOptions } from '../store/lock.js'
import type { Roots } from '../packages/roots.js'
import type { TransferShape } from '../transfer/pool.js'
import type { SigningKey, TrustedKey } from '../trust/signatures.js'
import type { Entry } from './entries.js'
import type { RestoreSource } from './lookup.js'
import { parseManifest, type Manifest } from './manifest.js'

export interface CacheContext {
  keys: KeyContext
  userRestoreKeys: readonly string[]
  layout: Layout
  backend: Backend
  log: Logger
  /**
   * Has the location's own Nix create or migrate its database (nix-store --init
   * through nix-portable); `ca` asks for the ca-derivations tables.
   */
  initDb: (ca: boolean) => Promise<void>
  trust: Trust
  /**
   * What the job's `nix-shell -p` needs, asked of its Nix (packages/roots.ts);
   * `via` overrides the nix-portable to ask (the one the main step installed).
   */
  roots: (via?: NixPortableInfo) => Promise<Roots>
  /** How long to wait for a Nix database another process holds (tests shorten it). */
  busy?: { limitMs: number; everyMs: number }
  /** Overrides the backend's transfer shape (`npm run bench:transfer` varies it). */
  transfer?: TransferShape
}

/** How this context's packs travel: its override, else its backend's measured shape. */
export function shapeOf(ctx: CacheContext): TransferShape {
  return ctx.transfer ?? ctx.backend.transfer
}

export interface Trust {
  /** Restores register only paths signed by one of these; empty: no signatures needed. */
  trusted: readonly TrustedKey[]
  /** Saves sign every path with it. */
  signingKey?: SigningKey
}

export interface NixPortableInfo {
  path: string
  runtime: string
}

/** What restore hands to save (the action keeps it in its state between main and post). */
export interface CacheState {
  version: 1
  /** Largest ValidPaths id after the restore: rows above it are this job's. */
  watermark: number
  matchedKey?: string
  cacheHit: boolean
  /** The restored snapshot, less the packs the cache no longer had. */
  manifest?: Manifest
  /** How many packs the restored snapshot listed. */
  restoredPacks?: number
  /** Entries (packs, snapshots) found broken: the save writes replacements, never names them. */
  broken?: string[]
  source?: RestoreSource
  /** The snapshot and package index entries read: a save that splits a pack they name publishes them anew. */
  entries?: Entry[]
  /** The nix-portable the main step ran, for the post step's questions to Nix. */
  nixPortable?: NixPortableInfo
}

export const MAX_PACKS = 8

/** Where restores and saves on one location take turns (store/lock.ts). */
export function lockDir(lay: Layout): string {
  return join(lay.location, '.nix-store-cache')
}

/** Lock options for an operation on the location: says who holds it, every 10 s. */
export function lockOptions(ctx: CacheContext, what: 'restore' | 'save'): LockOptions {
  return {
    what,
    onWait: (holder, waitedMs) =>
      ctx.log.info(
        `Waiting for ${lockDir(ctx.layout)}: another nix-store-cache works on this location ` +
          `(${holder}); waited ${Math.round(waitedMs / 1000)} s.`
      )
  }
}

/**
 * Runs `f` on the location's database, waiting while another process holds it,
 * with a word in the log every 10 s, for at most two minutes.
 */
export function onLocalDb<T>(ctx: CacheContext, f: () => T | Promise<T>): Promise<T> {
  const file = ctx.layout.dbFile
  return retryBusy(file, f, {
    limitMs: ctx.busy?.limitMs ?? 120_000,
    everyMs: ctx.busy?.everyMs ?? 10_000,
    onWait: ms =>
      ctx.log.info(
        `The Nix database ${file} is locked by another process (a nix command still running?): ` +
          `waiting, ${Math.round(ms / 1000)} s so far.`
      )
  })
}

/** Narrows a state value read back from the action's state or the CLI's state file. */
export function parseState(data: unknown): CacheState {
  const o = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>
  const state: CacheState = {
    version: 1,
    watermark: typeof o.watermark === 'number' && o.watermark >= 0 ? o.watermark : 0,
    cacheHit: o.cacheHit === true
  }
  if (typeof o.matchedKey === 'string') state.matchedKey = o.matchedKey
  if (typeof o.restoredPacks === 'number') state.restoredPacks = o.restoredPacks
  if (Array.isArray(o.broken)) state.broken = o.broken.filter(k => typeof k === 'string')
  if (o.manifest !== undefined) state.manifest = parseManifest(o.manifest)
  const sources: readonly unknown[] = ['snapshot', 'packages', 'partial', 'none']
  if (sources.includes(o.source)) state.source = o.source as RestoreSource
  if (Array.isArray(o.entries)) {
    state.entries = o.entries.map((e: unknown) => {
      const r = (e ?? {}) as Record<string, unknown>
      if (typeof r.key !== 'string') throw new Error('state: an entry without a key')
      return { key: r.key, manifest: parseManifest(r.manifest) }
    })
  }
  const np = (o.nixPortable ?? {}) as Record<string, unknown>
  if (typeof np.path === 'string' && typeof np.runtime === 'string') {
    state.nixPortable = { path: np.path, runtime: np.runtime }
  }
  return state
}
