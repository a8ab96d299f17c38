// What a store path may look like: /nix/store/<32 chars of Nix's base32>-<name>.
// nix-portable binds its store onto /nix, so every row says /nix/store.
export const STORE_DIR = '/nix/store'

const BASE32 = '0123456789abcdfghijklmnpqrsvwxyz'
const NAME_CHARS = 'A-Za-z0-9+._?=-'
const MAX_NAME = 211

/** A store folder name: `<hash>-<name>`, as Nix's `checkName` allows it. */
export const STORE_NAME_RE = new RegExp(`^[${BASE32}]{32}-(?!\\.)[${NAME_CHARS}]{1,${MAX_NAME}}$`)

export function isStoreName(name: string): boolean {
  return STORE_NAME_RE.test(name) && name !== '.' && name !== '..'
}

/** `/nix/store/<hash>-<name>`, nothing more. */
export const STORE_PATH_RE = new RegExp(
  `^${STORE_DIR}/[${BASE32}]{32}-(?!\\.)[${NAME_CHARS}]{1,${MAX_NAME}}$`
)

export function isStorePath(path: unknown): boolean {
  return typeof path === 'string' && STORE_PATH_RE.test(path)
}
