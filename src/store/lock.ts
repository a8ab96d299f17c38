// One nix-store-cache operation at a time on a location: jobs on one self-hosted
// machine may share a store, and two restores moving the same folders, or a save
// reading while a restore writes, must not interleave. A lock is a folder (mkdir
// is atomic) holding its owner's pid; a lock whose owner is gone is taken over.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CacheError } from '../errors.js'

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface LockOptions {
  timeoutMs?: number
  /** Called once when the lock is held by another live process. */
  onWait?: (owner: number) => void
}

export async function withLock<T>(
  dir: string,
  f: () => Promise<T>,
  o: LockOptions = {}
): Promise<T> {
  const lock = join(dir, 'lock')
  await mkdir(dir, { recursive: true })
  const deadline = Date.now() + (o.timeoutMs ?? 10 * 60_000)
  let told = false
  for (;;) {
    try {
      await mkdir(lock)
      await writeFile(join(lock, 'pid'), String(process.pid))
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    const owner = await ownerOf(lock)
    if (owner === 'gone') {
      await rm(lock, { recursive: true, force: true })
      continue
    }
    if (Date.now() > deadline) throw new CacheError(`${lock} is still held by process ${owner}`)
    if (!told && typeof owner === 'number') o.onWait?.(owner)
    told = true
    await new Promise(r => setTimeout(r, 200))
  }
  try {
    return await f()
  } finally {
    await rm(lock, { recursive: true, force: true })
  }
}

/** The owner's pid; 'gone' when it died, or wrote no pid within a minute; undefined while unknown. */
async function ownerOf(lock: string): Promise<number | 'gone' | undefined> {
  const text = await readFile(join(lock, 'pid'), 'utf8').catch(() => undefined)
  const pid = Number(text)
  if (text !== undefined && pid > 0) return alive(pid) ? pid : 'gone'
  const st = await stat(lock).catch(() => undefined)
  if (!st) return undefined
  return Date.now() - st.mtimeMs > 60_000 ? 'gone' : undefined
}
