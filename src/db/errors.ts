/** A database we refuse to open or merge; the message says which file and why. */
export class NixDbError extends Error {
  override name = 'NixDbError'
}
