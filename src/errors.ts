/** Bad input: the step fails before anything is touched. The message names the input. */
export class InputError extends Error {
  override name = 'InputError'
}

/** A cache service or archive problem: a warning, and the job goes on uncached. */
export class CacheError extends Error {
  override name = 'CacheError'
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
