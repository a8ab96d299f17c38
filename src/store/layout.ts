// Where nix-portable keeps things under NP_LOCATION (v011+). Only nix/store and
// nix/var/nix/db are ours to touch; conf/, bin/, busybox/ … are nix-portable's.
import { join } from 'node:path'

export interface Layout {
  location: string
  /** The real folder behind /nix/store. */
  storeDir: string
  dbFile: string
}

export function layout(location: string): Layout {
  const nix = join(location, '.nix-portable', 'nix')
  return {
    location,
    storeDir: join(nix, 'store'),
    dbFile: join(nix, 'var', 'nix', 'db', 'db.sqlite')
  }
}

/** The folder name of a store path. */
export function baseName(storePath: string): string {
  return storePath.slice(storePath.lastIndexOf('/') + 1)
}
