// A store derivation (`.drv`, Nix's ATerm text), read for what `nix-shell -p`
// needs: the outputs of its input derivations and its environment. Untrusted in
// the sense that a malformed file is an error, never a crash or a guess.
import { createHash } from 'node:crypto'
import { toNix32 } from '../trust/nar.js'

export interface Derivation {
  /** Output name -> its path; '' for an output whose path is not known before it is built (CA). */
  outputs: Map<string, string>
  /** Input derivation path -> the outputs used. */
  inputDrvs: Map<string, string[]>
  inputSrcs: string[]
  env: Map<string, string>
}

export class BadDerivationError extends Error {
  override name = 'BadDerivationError'
}

type Term = string | Term[]

/** Parses `Derive([outputs],[inputDrvs],[inputSrcs],system,builder,[args],[env])`. */
export function parseDerivation(text: string): Derivation {
  const start = text.startsWith('Derive(') ? 'Derive('.length : -1
  if (start < 0) throw new BadDerivationError('not a derivation (no `Derive(`)')
  const { items, end } = parseSeq(text, start, ')')
  if (text.slice(end).trim() !== '') throw new BadDerivationError('text after the derivation')
  if (items.length !== 7) throw new BadDerivationError(`${items.length} fields instead of 7`)
  const [outs, drvs, srcs, , , , env] = items as Term[][]
  const tuples = (t: Term[] | undefined, arity: number, what: string): Term[][] => {
    if (!Array.isArray(t)) throw new BadDerivationError(`${what} is not a list`)
    return t.map(x => {
      if (!Array.isArray(x) || x.length !== arity) throw new BadDerivationError(`bad ${what} entry`)
      return x
    })
  }
  const str = (t: Term | undefined): string => {
    if (typeof t !== 'string') throw new BadDerivationError('a string was expected')
    return t
  }
  return {
    outputs: new Map(tuples(outs, 4, 'outputs').map(o => [str(o[0]), str(o[1])])),
    inputDrvs: new Map(
      tuples(drvs, 2, 'inputDrvs').map(d => {
        const names = d[1]
        if (!Array.isArray(names)) throw new BadDerivationError('bad inputDrvs outputs')
        return [str(d[0]), names.map(str)]
      })
    ),
    inputSrcs: (Array.isArray(srcs) ? srcs : []).map(str),
    env: new Map(tuples(env, 2, 'env').map(e => [str(e[0]), str(e[1])]))
  }
}

/** A comma-separated sequence of terms up to `close`; `i` is just after the opening bracket. */
function parseSeq(s: string, i: number, close: string): { items: Term[]; end: number } {
  const items: Term[] = []
  if (s[i] === close) return { items, end: i + 1 }
  for (;;) {
    const t = parseTerm(s, i)
    items.push(t.term)
    i = t.end
    if (s[i] === ',') i++
    else if (s[i] === close) return { items, end: i + 1 }
    else throw new BadDerivationError(`unexpected ${s[i] ?? 'end'} at ${i}`)
  }
}

function parseTerm(s: string, i: number): { term: Term; end: number } {
  const c = s[i]
  if (c === '[') {
    const r = parseSeq(s, i + 1, ']')
    return { term: r.items, end: r.end }
  }
  if (c === '(') {
    const r = parseSeq(s, i + 1, ')')
    return { term: r.items, end: r.end }
  }
  if (c === '"') return parseString(s, i + 1)
  throw new BadDerivationError(`unexpected ${c ?? 'end'} at ${i}`)
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t' }

function parseString(s: string, i: number): { term: string; end: number } {
  let out = ''
  for (;;) {
    const next = s.slice(i).search(/["\\]/)
    if (next < 0) throw new BadDerivationError('unterminated string')
    out += s.slice(i, i + next)
    i += next
    if (s[i] === '"') return { term: out, end: i + 1 }
    const e = s[i + 1] ?? ''
    out += ESCAPES[e] ?? e
    i += 2
  }
}

/** `name` for `out`, else `name-<output>`: the name part of an output's store path. */
export function outputPathName(drvName: string, output: string): string {
  return output === 'out' ? drvName : `${drvName}-${output}`
}

/**
 * What a derivation's environment says instead of the path of a
 * content-addressed input's output, before it is built (Nix's
 * `DownstreamPlaceholder`): `/` + nix32(sha256("nix-upstream-output:<drv hash
 * part>:<output path name>")).
 */
export function downstreamPlaceholder(drvPath: string, output: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf('/') + 1)
  const hashPart = base.slice(0, 32)
  const drvName = base.slice(33).replace(/\.drv$/, '')
  const clear = `nix-upstream-output:${hashPart}:${outputPathName(drvName, output)}`
  return '/' + toNix32(createHash('sha256').update(clear).digest())
}
