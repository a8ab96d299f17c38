/** Where the pipeline reports; the action passes @actions/core, the CLI the console. */
export interface Logger {
  info(message: string): void
  warning(message: string): void
}

export const consoleLogger: Logger = {
  info: m => console.log(m),
  warning: m => console.error(`warning: ${m}`)
}

export interface Phase {
  name: string
  seconds: number
  paths?: number
  bytes?: number
}

/** Runs `f` and appends its duration to `phases`. */
export async function timed<T>(phases: Phase[], name: string, f: () => Promise<T>): Promise<T> {
  const start = performance.now()
  try {
    return await f()
  } finally {
    phases.push({ name, seconds: (performance.now() - start) / 1000 })
  }
}
