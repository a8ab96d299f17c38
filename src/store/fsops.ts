// File operations on store folders, which Nix leaves mode 0555: as a non-root
// user, renaming such a directory (its `..` changes) or deleting inside it fails
// until it gets u+w. Root ignores the modes, which hides these bugs.
import { chmodSync, lstatSync, renameSync } from 'node:fs'
import { chmod, lstat, readdir, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { run } from '../exec.js'

/** Gives u+w to `path` and every directory below it, so it can be removed. */
export async function makeWritable(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined)
  if (!st?.isDirectory()) return
  await chmod(path, st.mode | 0o200)
  for (const e of await readdir(path, { withFileTypes: true })) {
    if (e.isDirectory()) await makeWritable(join(path, e.name))
  }
}

/** Removes a folder that may hold read-only store trees. */
export async function removeTree(path: string): Promise<void> {
  await makeWritable(path)
  await rm(path, { recursive: true, force: true })
}

/**
 * Moves a store path (folder or file) to `to`, which must not exist. A directory
 * gets u+w for the rename and its mode back afterwards. Across filesystems, copies.
 */
export async function moveEntry(from: string, to: string): Promise<void> {
  // Synchronous calls: a restore moves hundreds of entries, a few syscalls each,
  // and a round trip through the thread pool per call costs more than the call.
  const st = lstatSync(from)
  const dir = st.isDirectory()
  if (dir) chmodSync(from, st.mode | 0o200)
  try {
    renameSync(from, to)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e
    await run('cp', ['-a', '--', from, to])
    await removeTree(from)
  }
  if (dir) chmodSync(to, st.mode)
}

/**
 * Makes `dest/<name>` for each source, sharing the files' data (hard links) when
 * on the same filesystem, else copying. Keeps modes and times, as tar would.
 */
export async function linkOrCopy(sources: string[], dest: string): Promise<void> {
  for (let i = 0; i < sources.length; i += 500) {
    const chunk = sources.slice(i, i + 500)
    try {
      await run('cp', ['-a', '--link', '-t', dest, '--', ...chunk])
    } catch {
      // Never copy over a hard link: that would write into the store's own file.
      for (const s of chunk) await removeTree(join(dest, basename(s)))
      await run('cp', ['-a', '-t', dest, '--', ...chunk])
    }
  }
}
