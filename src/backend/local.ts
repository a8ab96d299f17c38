// The local backend: `<dir>/<key>.tar.zst`, for a self-hosted runner's disk or a
// shared volume. Written under a temporary name and linked into place, so a
// reader never sees half an entry and an existing key is never overwritten.
import { randomBytes } from 'node:crypto'
import {
  chmod,
  link,
  mkdir,
  readdir,
  rename,
  stat,
  unlink,
  utimes,
  writeFile
} from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { CacheError } from '../errors.js'
import { removeTree } from '../store/fsops.js'
import type { StoreTrees } from '../store/pack-dir.js'
import { run } from '../exec.js'
import { compressCommand, DECOMPRESS } from '../transfer/archive.js'
import type { Backend, SaveOptions, SaveOutcome, Stored } from './types.js'
import { NEAR } from '../transfer/pool.js'

const SUFFIX = '.tar.zst'
/** Last-use marks: `<cache-dir>/.used/<name>`, an empty file whose mtime is the last use. */
const MARKS = '.used'
/** A save writing an archive touches it continuously; one untouched this long is dead. */
const TMP_MAX_AGE_MS = 60 * 60_000

export class LocalBackend implements Backend {
  readonly name = 'local'
  readonly transfer = NEAR
  readonly canReplace = true
  constructor(
    readonly cacheDir: string,
    readonly stageRoot: string
  ) {}

  slotDir(slot: string): string {
    return join(this.stageRoot, slot)
  }

  /**
   * Called while holding the location's lock, which every restore and save holds
   * for its whole run: another stage folder (`<pid>-<random>`) then belongs to a
   * job that is over or dead. Temporary archives in the cache folder, which jobs
   * on other machines may be writing, go once untouched for an hour.
   */
  async sweep(): Promise<void> {
    await sweepStages(this.stageRoot)
    const now = Date.now()
    for (const name of await readdir(this.cacheDir).catch(() => [] as string[])) {
      if (!name.startsWith('.') || !name.endsWith('.tmp')) continue
      const file = join(this.cacheDir, name)
      const st = await stat(file).catch(() => undefined)
      if (st && now - st.mtimeMs > TMP_MAX_AGE_MS) await unlink(file).catch(() => undefined)
    }
  }

  async restore(
    dir: string,
    primaryKey: string,
    prefixes: readonly string[]
  ): Promise<string | undefined> {
    const key = await this.find(primaryKey, prefixes)
    if (key === undefined) return undefined
    await mkdir(dir, { recursive: true })
    await run('tar', ['--use-compress-program', DECOMPRESS, '-xf', this.file(key), '-C', dir])
    return key
  }

  async save(
    dir: string,
    key: string,
    trees?: StoreTrees,
    o: SaveOptions = {}
  ): Promise<SaveOutcome> {
    const final = this.file(key)
    if (!o.replace && (await exists(final))) return { result: 'exists' }
    await mkdir(this.cacheDir, { recursive: true })
    const tmp = join(this.cacheDir, `.${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
    try {
      await run('tar', [
        '--use-compress-program',
        compressCommand(o.threads),
        '-cf',
        tmp,
        '-C',
        dir,
        '.',
        ...(await storeArgs(dir, trees))
      ])
      const bytes = (await stat(tmp)).size
      try {
        // rename replaces atomically; link never replaces (keys are immutable).
        if (o.replace) await rename(tmp, final)
        else await link(tmp, final)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { result: 'exists' }
        throw e
      }
      return { result: 'saved', archiveBytes: bytes }
    } finally {
      await unlink(tmp).catch(() => undefined)
    }
  }

  async list(): Promise<Stored[]> {
    const keys = (await this.names())
      .filter(n => n.endsWith(SUFFIX) && !n.startsWith('.'))
      .map(n => n.slice(0, -SUFFIX.length))
    return statAll(keys, k => this.file(k))
  }

  async remove(key: string): Promise<void> {
    await unlink(this.file(key)).catch(ignoreMissing)
  }

  async markUsed(group: string): Promise<void> {
    const dir = join(this.cacheDir, MARKS)
    // As open to other users as the cache folder itself (a shared volume).
    const mode = (await stat(this.cacheDir)).mode & 0o777
    if ((await mkdir(dir, { recursive: true })) !== undefined) await chmod(dir, mode)
    const now = new Date()
    const file = join(dir, group)
    await writeFile(file, '')
    await utimes(file, now, now)
  }

  async marks(): Promise<Stored[]> {
    const dir = join(this.cacheDir, MARKS)
    const names = await readdir(dir).catch(() => [] as string[])
    return statAll(names, g => join(dir, g))
  }

  async removeMark(group: string): Promise<void> {
    await unlink(join(this.cacheDir, MARKS, group)).catch(ignoreMissing)
  }

  /** The cache folder's entries; a folder that is not there yet is empty. */
  private async names(): Promise<string[]> {
    try {
      return await readdir(this.cacheDir)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return []
      throw new CacheError(
        `the cache folder ${this.cacheDir} cannot be read (${code}): give this runner's user ` +
          'read and write access to it, or choose another `cache-dir`'
      )
    }
  }

  private file(key: string): string {
    return join(this.cacheDir, `${key}${SUFFIX}`)
  }

  /** Exact key, then the newest entry by each prefix in turn. */
  private async find(primaryKey: string, prefixes: readonly string[]): Promise<string | undefined> {
    if (await exists(this.file(primaryKey))) return primaryKey
    const names = await this.names()
    const keys = names
      .filter(n => n.endsWith(SUFFIX) && !n.startsWith('.'))
      .map(n => n.slice(0, -SUFFIX.length))
    for (const prefix of [primaryKey, ...prefixes]) {
      const matches = keys.filter(k => k.startsWith(prefix))
      if (matches.length === 0) continue
      const dated = await Promise.all(
        matches.map(async k => ({ k, t: (await stat(this.file(k))).mtimeMs }))
      )
      dated.sort((a, b) => b.t - a.t || b.k.localeCompare(a.k))
      return dated[0]!.k
    }
    return undefined
  }
}

/** Other stage folders (`<pid>-<random>`) beside `stageRoot`: see LocalBackend.sweep. */
export async function sweepStages(stageRoot: string): Promise<void> {
  const parent = dirname(stageRoot)
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (/^\d+-[0-9a-f]+$/.test(name) && join(parent, name) !== stageRoot) {
      await removeTree(join(parent, name))
    }
  }
}

/**
 * tar arguments that add `trees` as `./store/<name>/…` straight from the store, so
 * saving costs no staging copy. The rename applies to member names and hard link
 * targets, never to symbolic link targets (flag S).
 */
export async function storeArgs(dir: string, trees?: StoreTrees): Promise<string[]> {
  if (!trees || trees.names.length === 0) return []
  const list = join(dir, '..', `${basename(dir)}.store-list`)
  await writeFile(list, trees.names.join('\n') + '\n')
  return [
    '--transform',
    's,^\\([0-9a-z]\\{32\\}-\\),./store/\\1,S',
    '-C',
    trees.storeDir,
    '--verbatim-files-from',
    '-T',
    list
  ]
}

/** Size and mtime of each name's file; a file gone meanwhile is left out. */
async function statAll(names: readonly string[], file: (n: string) => string): Promise<Stored[]> {
  const all = await Promise.all(
    names.map(async key => {
      const st = await stat(file(key)).catch(() => undefined)
      return st ? { key, bytes: st.size, modified: st.mtimeMs } : undefined
    })
  )
  return all.filter((s): s is Stored => s !== undefined)
}

function ignoreMissing(e: unknown): void {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false
  )
}
