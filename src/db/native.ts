import Database from 'better-sqlite3'
import { existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// ncc cannot follow better-sqlite3's dynamic require of its addon, so the bundle
// script copies the Linux prebuilds to dist/prebuilds/ (scripts/bundle.mjs) and we
// load the addon ourselves: in an ESM bundle, better-sqlite3's own `require` of a
// path is not defined. From src/ (tests), better-sqlite3 finds its own.
let addon: object | undefined
function bundledAddon(): object | undefined {
  if (addon) return addon
  const bundleDir = dirname(fileURLToPath(import.meta.url))
  const candidate = join(bundleDir, '..', 'prebuilds', `${process.platform}-${process.arch}.node`)
  if (!existsSync(candidate)) return undefined
  addon = createRequire(import.meta.url)(candidate) as object
  return addon
}

/** better-sqlite3 accepts the loaded addon object; its typings only say string. */
function bindingOption(): { nativeBinding?: string } {
  const loaded = bundledAddon()
  return loaded ? { nativeBinding: loaded as unknown as string } : {}
}

export interface ConnectOptions {
  readonly?: boolean
}

/** Opens an SQLite file that must exist, with the right addon and a busy timeout. */
export function connect(file: string, opts: ConnectOptions = {}): Database.Database {
  return new Database(file, {
    readonly: opts.readonly ?? false,
    fileMustExist: true,
    // A short wait inside SQLite (it blocks the thread); longer ones are waited
    // for asynchronously, with a word in the log (busy.ts).
    timeout: 1000,
    ...bindingOption()
  })
}

/** Creates a new, empty SQLite file (fails if it exists). */
export function create(file: string): Database.Database {
  if (existsSync(file)) throw new Error(`${file} already exists`)
  mkdirSync(dirname(file), { recursive: true })
  return new Database(file, { timeout: 60_000, ...bindingOption() })
}
