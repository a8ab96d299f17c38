// What a job's `nix-shell -p <attrs>` needs, from Nix itself: one
// nix-instantiate of the very expression nix-shell builds (nix-build.cc) and of
// the bashInteractive it runs, then the store derivations it wrote. The shell's
// buildInputs name one output per attribute, in order; its other inputs
// (stdenv, sources) and bashInteractive are what the shell itself needs.
// Closures come from the database afterwards.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { nixCommand, type NixPortableRun } from '../nix-portable/command.js'
import { baseName } from '../store/layout.js'
import { downstreamPlaceholder, parseDerivation, type Derivation } from './derivation.js'

export interface Roots {
  /** What nix-shell -p needs besides the attributes: stdenv, bashInteractive, sources. */
  shell: string[]
  /**
   * Per attribute, the output its buildInputs entry names. Empty when the
   * entries cannot be told apart (an attribute that is a list, say).
   */
  attrs: Map<string, string[]>
}

/** The expression `nix-shell -p` evaluates (Nix 2.8 to 2.34 write the same). */
export function shellExpression(deps: readonly string[]): string {
  const inputs = deps.map(d => `(${d}) `).join('')
  return (
    '{...}@args: with import <nixpkgs> args; (pkgs.runCommandCC or pkgs.runCommand) "shell" ' +
    `{ buildInputs = [ ${inputs}]; } ""`
  )
}

export async function findRoots(
  np: NixPortableRun,
  deps: readonly string[],
  storeDir: string
): Promise<Roots> {
  const expr =
    `let p = import <nixpkgs> { }; in [ ((${shellExpression(deps)}) { }) ]` +
    ' ++ (if p ? bashInteractive then [ p.bashInteractive ] else [ ])'
  const drvPaths = (await nixCommand(np, ['nix-instantiate', '--expr', expr]))
    .split('\n')
    .map(l => l.trim())
    .filter(l => l.endsWith('.drv'))
  if (drvPaths.length === 0) throw new Error('nix-instantiate printed no derivation')
  const read = async (path: string): Promise<Derivation> => {
    const text = await readFile(join(storeDir, baseName(path)), 'utf8')
    return parseDerivation(text)
  }
  const shell = await read(drvPaths[0]!)
  const wanted: [string, string][] = [...shell.inputDrvs].flatMap(([d, outs]) =>
    outs.map((o): [string, string] => [d, o])
  )
  if (drvPaths[1]) wanted.push([drvPaths[1], 'out'])
  const resolved = await resolveOutputs(np, wanted, read)

  // buildInputs holds an output path, or a placeholder for a CA output.
  // An output not built ('') is no root: nix-shell never ran for it.
  const byText = new Map<string, string>()
  wanted.forEach(([d, o], i) => {
    const path = resolved[i]!
    if (path) byText.set(path, path)
    byText.set(downstreamPlaceholder(d, o), path)
  })
  const entries = (shell.env.get('buildInputs') ?? '').split(/\s+/).filter(Boolean)
  const attrs = new Map<string, string[]>()
  if (entries.length === deps.length && entries.every(e => byText.has(e))) {
    deps.forEach((d, i) => {
      const path = byText.get(entries[i]!)!
      attrs.set(d, path ? [path] : [])
    })
  }
  const ofAttrs = new Set([...attrs.values()].flat())
  const own = [...resolved, ...shell.inputSrcs].filter(p => p && !ofAttrs.has(p))
  return { shell: [...new Set(own)].sort(), attrs }
}

/**
 * The paths of derivation outputs: written in the derivation when it is
 * input-addressed; asked of Nix for content-addressed ones, never building
 * (`--max-jobs 0`, no substituters): '' for an output not built.
 */
async function resolveOutputs(
  np: NixPortableRun,
  wanted: readonly (readonly [string, string])[],
  read: (path: string) => Promise<Derivation>
): Promise<string[]> {
  const drvs = new Map<string, Derivation>()
  const out: string[] = []
  for (const [d, o] of wanted) {
    let drv = drvs.get(d)
    if (!drv) drvs.set(d, (drv = await read(d)))
    let path = drv.outputs.get(o)
    if (!path) {
      const printed = await nixCommand(
        np,
        [
          'nix-store',
          '--realise',
          '--max-jobs',
          '0',
          '--option',
          'substitute',
          'false',
          `${d}!${o}`
        ],
        ['extra-experimental-features = ca-derivations']
      ).catch(() => '')
      path = printed.split('\n').find(l => l.startsWith('/')) ?? ''
    }
    out.push(path)
  }
  return out
}
