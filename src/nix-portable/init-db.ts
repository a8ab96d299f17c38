// A location's Nix database, made by the location's own Nix: every Nix version
// (2.8 to 2.34) has its own tables, triggers, indexes and migration records
// (`ca-schema` file, `SchemaMigrations` table), and only it knows them. `nix-store
// --init` opens the store, which creates the database or migrates it in place,
// and does nothing else. With ca-derivations on, Nix adds its Realisations tables.
import { nixCommand, type NixPortableRun } from './command.js'

export type { NixPortableRun }

/** Has the location's Nix create (or migrate) its database; `ca` adds the ca-derivations tables. */
export async function initStoreDb(np: NixPortableRun, ca: boolean): Promise<void> {
  await nixCommand(
    np,
    ['nix-store', '--init'],
    ca ? ['extra-experimental-features = ca-derivations'] : []
  )
}
