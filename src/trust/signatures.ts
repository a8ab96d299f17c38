// Signatures in Nix's own format, so that Nix itself can check them: keys as
// `nix-store --generate-binary-cache-key` writes them (`name:base64`; a secret
// key is the 32-byte seed followed by the 32-byte public key), signatures
// `name:base64(ed25519(fingerprint))` in ValidPaths.sigs, space-separated, over
// the fingerprint Nix uses for narinfo signatures:
//   1;<path>;sha256:<nix32 narHash>;<narSize>;<sorted references, comma-separated>
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { parseNarHash, toNix32 } from './nar.js'

export interface SigningKey {
  name: string
  key: KeyObject
}

export interface TrustedKey {
  name: string
  key: KeyObject
}

/** What a path's signature covers: its row and its references. */
export interface SignedRow {
  path: string
  /** ValidPaths.hash: `sha256:<hex>` (or nix32). */
  hash: string
  narSize: number
  references: readonly string[]
}

const b64url = (b: Buffer): string => b.toString('base64url')

function splitKey(text: string, bytes: number): { name: string; raw: Buffer } | undefined {
  const m = /^([A-Za-z0-9._+-]+):([A-Za-z0-9+/]+={0,2})$/.exec(text.trim())
  if (!m) return undefined
  const raw = Buffer.from(m[2]!, 'base64')
  return raw.length === bytes ? { name: m[1]!, raw } : undefined
}

/** A secret key; undefined when `text` is not one (the caller names the input). */
export function parseSecretKey(text: string): SigningKey | undefined {
  const k = splitKey(text, 64)
  if (!k) return undefined
  const [seed, pub] = [k.raw.subarray(0, 32), k.raw.subarray(32)]
  const key = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: b64url(seed), x: b64url(pub) },
    format: 'jwk'
  })
  // The public half must be the seed's: a key pasted wrong would sign with one
  // key while claiming another.
  const derived = createPublicKey(key).export({ format: 'jwk' }).x
  return derived === b64url(pub) ? { name: k.name, key } : undefined
}

export function parsePublicKey(text: string): TrustedKey | undefined {
  const k = splitKey(text, 32)
  if (!k) return undefined
  return {
    name: k.name,
    key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(k.raw) }, format: 'jwk' })
  }
}

/** The fingerprint Nix signs; undefined when the row cannot have one (no size, bad hash). */
export function fingerprint(row: SignedRow): string | undefined {
  const hash = parseNarHash(row.hash)
  if (!hash || !(row.narSize > 0)) return undefined
  const refs = [...row.references].sort().join(',')
  return `1;${row.path};sha256:${toNix32(hash)};${row.narSize};${refs}`
}

/** `name:base64sig`, for ValidPaths.sigs. */
export function signRow(row: SignedRow, k: SigningKey): string {
  const fp = fingerprint(row)
  if (fp === undefined) throw new Error(`cannot sign ${row.path}: its row has no NAR hash or size`)
  return `${k.name}:${sign(null, Buffer.from(fp), k.key).toString('base64')}`
}

/** Whether one of `sigs` (ValidPaths.sigs) is a valid signature of `row` by a trusted key. */
export function hasTrustedSignature(
  row: SignedRow,
  sigs: string | null,
  trusted: readonly TrustedKey[]
): boolean {
  const fp = fingerprint(row)
  if (fp === undefined || !sigs) return false
  for (const s of sigs.split(/\s+/).filter(Boolean)) {
    const colon = s.indexOf(':')
    const name = s.slice(0, colon)
    const sig = Buffer.from(s.slice(colon + 1), 'base64')
    if (colon <= 0 || sig.length !== 64) continue
    for (const t of trusted) {
      if (t.name === name && verify(null, Buffer.from(fp), t.key, sig)) return true
    }
  }
  return false
}

/** Adds (or replaces) the signature by `k.name` in a sigs value. */
export function withSignature(sigs: string | null, signature: string, keyName: string): string {
  const others = (sigs ?? '').split(/\s+/).filter(s => s && !s.startsWith(`${keyName}:`))
  return [...others, signature].join(' ')
}
