// A pack on disk: `store/<hash>-<name>/…`, `db.sqlite` (the paths' rows, Nix's
// schema plus ExternalRefs) and `pack.json`. Everything read from a restored pack
// is untrusted and narrowed field by field.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { extract, isStoreName, NixDb, SCHEMA_VERSION } from '../db/index.js'
import { baseName, type Layout } from './layout.js'
import { linkOrCopy } from './fsops.js'
import { escapingLink, listLinks } from './links.js'

export const PACK_FORMAT = 1
/** What a pack holds, and nothing else. */
const PACK_ENTRIES = ['db.sqlite', 'pack.json', 'store']

export interface PackInfo {
  format: number
  /** Sorted store paths. */
  paths: string[]
  nixSchema: number
  /** The paths' NAR size, as Nix recorded it: about the bytes of their files. */
  bytes: number
  createdAt: string
}

export class BadPackError extends Error {
  override name = 'BadPackError'
}

export function storeOf(dir: string): string {
  return join(dir, 'store')
}

/** Stages `paths` (valid, on disk) from the runner's store as a pack in `dir`. */
/**
 * Writes a pack's db.sqlite and pack.json into `dir`. Its store folders stay where
 * they are: the backend archives them as `store/<name>` (see StoreTrees).
 */
export async function stagePack(
  lay: Layout,
  paths: readonly string[],
  dir: string
): Promise<PackInfo> {
  const sorted = [...paths].sort()
  await mkdir(dir, { recursive: true })
  const { narBytes } = extract(lay.dbFile, sorted, join(dir, 'db.sqlite'))
  const info: PackInfo = {
    format: PACK_FORMAT,
    paths: sorted,
    nixSchema: SCHEMA_VERSION,
    bytes: narBytes,
    createdAt: new Date().toISOString()
  }
  await writeFile(join(dir, 'pack.json'), JSON.stringify(info))
  return info
}

/** Store folders an entry holds as `store/<name>`, archived from where they are. */
export interface StoreTrees {
  storeDir: string
  names: string[]
}

/** For backends that can only archive one folder: hard links (or copies) under dir/store. */
export async function materialize(dir: string, trees: StoreTrees): Promise<void> {
  await mkdir(storeOf(dir), { recursive: true })
  await linkOrCopy(
    trees.names.map(n => join(trees.storeDir, n)),
    storeOf(dir)
  )
}

/** Narrows a parsed pack.json. */
export function parsePackInfo(data: unknown): PackInfo {
  if (typeof data !== 'object' || data === null)
    throw new BadPackError('pack.json is not an object')
  const o = data as Record<string, unknown>
  if (o.format !== PACK_FORMAT)
    throw new BadPackError(`pack.json has format ${String(o.format)}, expected ${PACK_FORMAT}`)
  if (o.nixSchema !== SCHEMA_VERSION) {
    throw new BadPackError(
      `pack.json says Nix schema ${String(o.nixSchema)}, expected ${SCHEMA_VERSION}`
    )
  }
  if (!Array.isArray(o.paths) || !o.paths.every(p => typeof p === 'string')) {
    throw new BadPackError('pack.json has no list of paths')
  }
  const paths = (o.paths as string[]).slice().sort()
  return {
    format: PACK_FORMAT,
    paths,
    nixSchema: SCHEMA_VERSION,
    bytes: typeof o.bytes === 'number' ? o.bytes : 0,
    createdAt: typeof o.createdAt === 'string' ? o.createdAt : ''
  }
}

/**
 * Checks a restored pack before anything of it reaches the store: only
 * `<hash>-<name>` entries, no relative link climbing out of the store, and
 * pack.json, db.sqlite and the folders naming the same paths. Returns the paths
 * it references outside itself (to be valid before it is merged).
 */
export interface CheckedPack {
  info: PackInfo
  /** Paths it refers to outside itself. */
  external: string[]
  /** It carries Realisations rows (ca-derivations): the target needs those tables. */
  realisations: boolean
}

export async function checkPack(dir: string, runnerStore?: string): Promise<CheckedPack> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(join(dir, 'pack.json'), 'utf8'))
  } catch (e) {
    throw new BadPackError(`pack.json is missing or not JSON (${(e as Error).message})`)
  }
  const info = parsePackInfo(raw)
  const extra = (await readdir(dir)).filter(n => !PACK_ENTRIES.includes(n))
  if (extra.length > 0) {
    throw new BadPackError(
      `it holds ${extra.slice(0, 3).join(', ')} besides ${PACK_ENTRIES.join(', ')}`
    )
  }
  const names = (await readdir(storeOf(dir)).catch(() => [] as string[])).sort()
  for (const n of names)
    if (!isStoreName(n)) throw new BadPackError(`store/${n} is not a store path name`)
  const want = info.paths.map(baseName).sort()
  if (names.join('\n') !== want.join('\n')) {
    throw new BadPackError(
      `the folders (${names.length}) do not match pack.json's paths (${want.length})`
    )
  }
  const escaping = escapingLink(await listLinks(storeOf(dir)), runnerStore)
  if (escaping) {
    const { link, resolved } = escaping
    throw new BadPackError(
      `${link.path} links to ${link.target}, which resolves to ${resolved}, outside the store`
    )
  }

  const db = NixDb.open(join(dir, 'db.sqlite'), { readonly: true })
  try {
    const rows = db.pathsSince(0).sort()
    if (rows.join('\n') !== info.paths.join('\n')) {
      throw new BadPackError(
        `db.sqlite's rows (${rows.length}) do not match pack.json's paths (${info.paths.length})`
      )
    }
    const hasExternal = db.sql
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ExternalRefs'")
      .get()
    const external = hasExternal
      ? (db.sql
          .prepare('SELECT DISTINCT path FROM ExternalRefs ORDER BY path')
          .pluck()
          .all() as string[])
      : []
    return { info, external, realisations: db.hasRows('Realisations') }
  } finally {
    db.close()
  }
}
