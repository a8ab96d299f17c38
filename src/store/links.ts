// Where a pack's symbolic links really lead once its paths are in /nix/store.
// A relative link must end inside the store, judged component by component the
// way the kernel resolves it: through the pack's own links and the runner's
// store, an absolute link met on the way included. (`bin/up -> /elsewhere` with
// `bin/rel -> up/../../../etc` is /etc, whatever the string `bin/rel` says.)
// Absolute links (`bin/sh -> /bin/sh`) are the package's business, as in Nix.
import { lstatSync, readlinkSync } from 'node:fs'
import { readdir, readlink } from 'node:fs/promises'
import { join, posix, relative } from 'node:path'
import { STORE_DIR } from '../db/index.js'

const MAX_HOPS = 40 // as Linux's ELOOP

export interface Link {
  /** Logical path, /nix/store/<name>/… */
  path: string
  target: string
}

/**
 * Every link in a pack's store folder, never following one (a loop must not
 * hang us). Read in this process: a `find` per pack cost a fork of this whole
 * process, which blocks its event loop for milliseconds (more as memory grows).
 */
export async function listLinks(packStore: string): Promise<Link[]> {
  const entries = await readdir(packStore, { recursive: true, withFileTypes: true })
  return Promise.all(
    entries
      .filter(e => e.isSymbolicLink())
      .map(async e => {
        const full = join(e.parentPath, e.name)
        return { path: `${STORE_DIR}/${relative(packStore, full)}`, target: await readlink(full) }
      })
  )
}

/**
 * The first relative link that resolves outside the store, with where it leads;
 * undefined when none does. `runnerStore` is the real folder behind /nix/store,
 * for links that pass through paths the pack does not hold.
 */
export function escapingLink(
  links: readonly Link[],
  runnerStore: string | undefined
): { link: Link; resolved: string } | undefined {
  const inPack = new Map(links.map(l => [l.path, l.target]))
  const readLink = (path: string): string | undefined => {
    if (inPack.has(path)) return inPack.get(path)
    if (!runnerStore || !path.startsWith(`${STORE_DIR}/`)) return undefined
    const real = join(runnerStore, path.slice(STORE_DIR.length + 1))
    try {
      return lstatSync(real).isSymbolicLink() ? readlinkSync(real) : undefined
    } catch {
      return undefined
    }
  }
  for (const link of links) {
    if (posix.isAbsolute(link.target)) continue
    const resolved = resolve(posix.dirname(link.path), link.target, readLink)
    if (resolved !== undefined && resolved !== STORE_DIR && !resolved.startsWith(`${STORE_DIR}/`)) {
      return { link, resolved }
    }
  }
  return undefined
}

/** Resolves `target` from the directory `from`; undefined for a loop (it leads nowhere). */
function resolve(
  from: string,
  target: string,
  readLink: (path: string) => string | undefined
): string | undefined {
  const stack = from.split('/').filter(Boolean)
  const pending = target.split('/')
  let hops = 0
  while (pending.length > 0) {
    const c = pending.shift()!
    if (c === '' || c === '.') continue
    if (c === '..') {
      stack.pop()
      continue
    }
    stack.push(c)
    const next = readLink(`/${stack.join('/')}`)
    if (next === undefined) continue
    if (++hops > MAX_HOPS) return undefined
    stack.pop()
    if (posix.isAbsolute(next)) stack.length = 0
    pending.unshift(...next.split('/'))
  }
  return `/${stack.join('/')}`
}
