// Whether a restored pack's paths can be registered: each path's files must
// serialise to the NAR hash and size its row claims, and, when trusted keys are
// given, its row must carry a signature by one of them. Nothing is registered
// before this says yes.
import { join } from 'node:path'
import type { PathRow } from '../db/index.js'
import { baseName } from '../store/layout.js'
import { narHashes, type NarPool } from './nar-pool.js'
import { parseNarHash } from './nar.js'
import { hasTrustedSignature, type TrustedKey } from './signatures.js'

/** Why `rows` (folders in `storeDir`) cannot be trusted, or undefined when they can. */
export async function untrusted(
  storeDir: string,
  rows: readonly PathRow[],
  trusted: readonly TrustedKey[],
  pool?: NarPool
): Promise<string | undefined> {
  if (trusted.length > 0) {
    const unsigned = rows.find(r => !hasTrustedSignature(r, r.sigs, trusted))
    if (unsigned) {
      return `${unsigned.path} is not signed by a trusted key (${trusted.map(t => t.name).join(', ')})`
    }
  }
  return (await mismatches(storeDir, rows, pool))[0]?.reason
}

/** Every path whose files do not serialise to its row's NAR hash and size, and why. */
export async function mismatches(
  storeDir: string,
  rows: readonly PathRow[],
  pool?: NarPool
): Promise<{ path: string; reason: string }[]> {
  const digests = await narHashes(
    rows.map(r => ({ path: join(storeDir, baseName(r.path)), weight: r.narSize })),
    pool
  )
  const out: { path: string; reason: string }[] = []
  for (const [i, r] of rows.entries()) {
    const d = digests[i]!
    const claimed = parseNarHash(r.hash)
    let reason: string | undefined
    if (d instanceof Error) reason = `${r.path} cannot be read: ${d.message}`
    else if (!claimed)
      reason = `${r.path} has a malformed NAR hash in its row: ${r.hash.slice(0, 80)}`
    else if (claimed.toString('hex') !== d.hex || r.narSize !== d.size) {
      reason =
        `${r.path} does not match its row: NAR sha256:${d.hex} (${d.size} bytes), ` +
        `row ${r.hash} (${r.narSize} bytes)`
    }
    if (reason) out.push({ path: r.path, reason })
  }
  return out
}
