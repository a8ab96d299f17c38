// A snapshot: the small entry listing the packs that together hold what a
// dependency set needs. A package index entry has the same form, for one
// attribute (or the shell's own needs). Untrusted when restored: narrowed
// field by field.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isStorePath } from '../db/index.js'

export const MANIFEST_FORMAT = 1
const FILE = 'snapshot.json'

export interface PackRef {
  key: string
  /** Sorted store paths the pack holds. */
  paths: string[]
}

export interface Manifest {
  format: number
  packs: PackRef[]
  createdAt: string
  /** The attributes it is for (an index entry: one; the shell's entry: none). */
  dependencies?: string[]
  /** The outputs whose closure it holds. */
  roots?: string[]
}

export class BadManifestError extends Error {
  override name = 'BadManifestError'
}

export function parseManifest(data: unknown): Manifest {
  const o = data as Record<string, unknown> | null
  if (typeof o !== 'object' || o === null)
    throw new BadManifestError('snapshot.json is not an object')
  if (o.format !== MANIFEST_FORMAT)
    throw new BadManifestError(`snapshot.json has format ${String(o.format)}`)
  if (!Array.isArray(o.packs)) throw new BadManifestError('snapshot.json lists no packs')
  const packs = o.packs.map((p: unknown, i): PackRef => {
    const r = p as Record<string, unknown> | null
    if (
      typeof r !== 'object' ||
      r === null ||
      typeof r.key !== 'string' ||
      !Array.isArray(r.paths)
    ) {
      throw new BadManifestError(`snapshot.json: pack ${i} is malformed`)
    }
    if (!/^[A-Za-z0-9._-]{1,512}$/.test(r.key))
      throw new BadManifestError(`snapshot.json: pack ${i} has a bad key`)
    if (!r.paths.every(isStorePath))
      throw new BadManifestError(`snapshot.json: pack ${i} lists a malformed path`)
    return { key: r.key, paths: (r.paths as string[]).slice().sort() }
  })
  const m: Manifest = {
    format: MANIFEST_FORMAT,
    packs,
    createdAt: typeof o.createdAt === 'string' ? o.createdAt : ''
  }
  if (o.dependencies !== undefined) {
    if (
      !Array.isArray(o.dependencies) ||
      !o.dependencies.every(d => typeof d === 'string' && /^[A-Za-z0-9_.'-]{1,200}$/.test(d))
    ) {
      throw new BadManifestError('snapshot.json: malformed dependencies')
    }
    m.dependencies = o.dependencies as string[]
  }
  if (o.roots !== undefined) {
    if (!Array.isArray(o.roots) || !o.roots.every(isStorePath))
      throw new BadManifestError('snapshot.json: malformed roots')
    m.roots = o.roots as string[]
  }
  return m
}

export async function readManifest(dir: string): Promise<Manifest> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(join(dir, FILE), 'utf8'))
  } catch (e) {
    throw new BadManifestError(`snapshot.json is missing or not JSON (${(e as Error).message})`)
  }
  return parseManifest(raw)
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await writeFile(join(dir, FILE), JSON.stringify(manifest))
}
