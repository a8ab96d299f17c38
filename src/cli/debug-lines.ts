// The @actions/* libraries report through core.debug, which writes `::debug::…`
// workflow commands for the runner to hide, or show under step debug. A terminal
// shows them raw. The CLI drops them unless --verbose, which prints them as
// `debug: …`; inside GitHub Actions they pass as they are, so the runner still
// decides.
const PREFIX = '::debug::'

/** `::debug::a%0Ab` lines -> `debug: a\nb` (verbose) or nothing; other text unchanged. */
export function rewriteDebugLines(text: string, verbose: boolean): string {
  if (!text.includes(PREFIX)) return text
  return text
    .split(/(?<=\n)/)
    .map(line => {
      if (!line.startsWith(PREFIX)) return line
      if (!verbose) return ''
      const data = line
        .slice(PREFIX.length)
        .replace(/%0D/g, '\r')
        .replace(/%0A/g, '\n')
        .replace(/%25/g, '%')
      return `debug: ${data}`
    })
    .join('')
}

/** Routes this process's stdout through rewriteDebugLines (outside GitHub Actions). */
export function filterDebugOutput(verbose: boolean, env: NodeJS.ProcessEnv = process.env): void {
  if (env.GITHUB_ACTIONS === 'true') return
  const stdout = process.stdout
  const write = stdout.write.bind(stdout) as (...args: unknown[]) => boolean
  stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk !== 'string') return write(chunk, ...rest)
    const kept = rewriteDebugLines(chunk, verbose)
    if (kept) return write(kept, ...rest)
    const callback = rest.find(r => typeof r === 'function') as (() => void) | undefined
    callback?.()
    return true
  }) as typeof stdout.write
}
