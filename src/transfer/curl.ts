// A download by curl, its output for the next program's stdin: the bytes go
// from the socket to zstd without passing through this process. Measured on a
// 248 MB object from the Ceph gateway: curl 0.05 core-seconds, the AWS SDK's
// stream through Node 0.33-0.41 (each read a new buffer, and a full garbage
// collection every 20-30 MB of them).
import { spawn, type ChildProcess } from 'node:child_process'
import type { Progress } from './breaker.js'

/**
 * curl fetching `url` to its stdout (`--fail`: an HTTP error is exit 22, no
 * body). The URL goes in on stdin, never on the command line, where anyone on
 * the machine could read a signed URL. `progress` is called when the bytes
 * received grow (read from curl's progress meter), not merely when it redraws.
 */
export function curlGet(curl: string, url: string, progress: Progress): ChildProcess {
  // Quotes, backslashes or spaces would need escaping in curl's config: a
  // signed URL has none.
  if (/["\\\s]/.test(url)) throw new Error(`not a URL curl can be given: ${url.slice(0, 80)}`)
  const child = spawn(
    curl,
    ['--config', '-', '--fail', '--show-error', '--connect-timeout', '5', '--noproxy', '*'],
    { stdio: ['pipe', 'pipe', 'pipe'] }
  )
  child.stdin!.end(`url = "${url}"\n`)
  let last = ''
  let partial = ''
  child.stderr!.on('data', (d: Buffer) => {
    // The meter redraws its line after a \r: the unfinished last one is read
    // too (a value cut short lacks the space after it), and again when whole.
    const lines = (partial + d.toString()).split(/[\r\n]/)
    partial = lines.at(-1) ?? ''
    for (const line of lines) {
      const received = receivedOf(line)
      if (received !== undefined && received !== last) {
        last = received
        progress()
      }
    }
  })
  return child
}

/**
 * The "Received" column of a line of curl's meter (`% Total % Received % Xferd
 * …`: `100  236M  100  236M    0     0   812M …`), or undefined for other lines.
 */
export function receivedOf(line: string): string | undefined {
  return /^\s*\d+\s+\S+\s+\d+\s+(\d+(?:\.\d+)?[kMGTP]?)\s/.exec(line)?.[1]
}
