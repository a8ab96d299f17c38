// `nix-store-cache <run|restore|save> --flag value …`: the flags carry the
// action's input names, so one Config parser serves both.
import { InputError } from '../errors.js'

export const COMMANDS = ['run', 'restore', 'save', 'prune'] as const
export type Command = (typeof COMMANDS)[number]

export const FLAGS = [
  'systemDependencies',
  'run',
  'key',
  'restore-keys',
  'backend',
  'cache-dir',
  'location',
  'nix-portable',
  'runtime',
  'allow-user-namespaces',
  'save',
  's3-bucket',
  's3-prefix',
  's3-endpoint',
  's3-region',
  's3-force-path-style',
  'keep-snapshots',
  'max-age',
  'max-size',
  'grace',
  'dry-run',
  'token',
  'stall-timeout'
] as const

/** Flags without a value. */
export const SWITCHES = ['verbose', 'dry-run'] as const

export const USAGE = `usage: nix-store-cache <run|restore|save|prune> --systemDependencies "hello cowsay" [--run "hello"]
  [--key K] [--restore-keys "prefix1\\nprefix2"] [--backend local|github|s3] [--cache-dir DIR]
  [--location NP_LOCATION] [--nix-portable PATH] [--runtime auto|bwrap|proot]
  [--allow-user-namespaces true|false] [--save true|false] [--verbose]
  [--s3-bucket B] [--s3-prefix P] [--s3-endpoint URL] [--s3-region R] [--s3-force-path-style true|false]
  [--stall-timeout 1m]
  prune (the backend's whole cache; no --systemDependencies): [--keep-snapshots 2] [--max-age 30d]
  [--max-size 10G] [--grace 1h] [--dry-run]`

export interface ParsedArgs {
  command: Command
  flags: Map<string, string>
  /** --verbose: the libraries' debug lines too. */
  verbose: boolean
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const [command, ...rest] = argv
  if (!COMMANDS.includes(command as Command)) {
    throw new InputError(`${command ? `unknown command \`${command}\`` : 'no command'}\n${USAGE}`)
  }
  const flags = new Map<string, string>()
  let verbose = false
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(arg)
    if (!m) throw new InputError(`unexpected argument \`${arg}\`\n${USAGE}`)
    const name = m[1]!
    if ((SWITCHES as readonly string[]).includes(name) && m[2] === undefined) {
      // A switch alone is true; `--dry-run false` also reads as the input does.
      const value = /^(true|false)$/.test(rest[i + 1] ?? '') ? rest[++i]! : 'true'
      if (name === 'verbose') verbose = value === 'true'
      else flags.set(name, value)
      continue
    }
    if (!(FLAGS as readonly string[]).includes(name))
      throw new InputError(`unknown flag \`--${name}\`\n${USAGE}`)
    const value = m[2] ?? rest[++i]
    if (value === undefined) throw new InputError(`flag \`--${name}\` needs a value`)
    flags.set(name, value)
  }
  return { command: command as Command, flags, verbose }
}
