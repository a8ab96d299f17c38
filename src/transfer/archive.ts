// Archives as streams: `tar -c | zstd` into an upload as it is made, and a
// download through `zstd -d` into `tar -x` as it arrives; never whole on disk or
// in memory. The s3 backend moves its entries this way; local writes files with
// the same zstd (github's go through @actions/cache, which runs zstd alike).
import { ChildProcess, spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { failure } from '../exec.js'
import type { Progress } from './breaker.js'

/**
 * zstd as @actions/cache runs it (level 3), so entries are the same either way,
 * on `threads` threads (0: one a core, as `zstdmt`). Level 3 is zstd's default:
 * near the best ratio per second. --long would save a few percent but needs
 * the flag to decompress (RIG.md).
 */
export const compressCommand = (threads = 0): string => `zstd -T${threads} -3 -q`
export const DECOMPRESS = 'zstd -d -q'

export interface Archive {
  /** The compressed archive, as it is made. */
  stream: Readable
  /** Resolves once tar (and so zstd) exited 0. */
  done: Promise<void>
  /** Compressed bytes so far. */
  bytes(): number
  kill(): void
}

/**
 * `tar -c -f - <args>` through zstd; `signal` kills it. tar runs zstd itself:
 * the uncompressed archive goes from one to the other through a pipe of their
 * own, not through this process (measured: 0.36 core-seconds less for 370 MB).
 * zstd runs on `threads` threads (compressCommand).
 */
export function createArchive(
  tarArgs: readonly string[],
  signal: AbortSignal,
  threads?: number
): Archive {
  const args = ['--use-compress-program', compressCommand(threads), '-c', '-f', '-', ...tarArgs]
  const tar = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const kill = (): void => void tar.kill()
  signal.addEventListener('abort', kill, { once: true })
  const done = exited(tar, 'tar', args).then(
    () => signal.removeEventListener('abort', kill),
    (e: unknown) => {
      kill()
      throw e
    }
  )
  // Nothing handled yet is fine: whoever streams awaits it.
  done.catch(() => undefined)
  let bytes = 0
  tar.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length))
  return { stream: tar.stdout, done, bytes: () => bytes, kill }
}

/**
 * Streams a compressed archive through `zstd -d` into `tar -x -f - <args>`, from
 * `source`: a stream, or a program writing it to its stdout (curl), whose
 * output goes to zstd without passing through this process. For a stream,
 * `progress` is called as bytes arrive (a program's caller reports its own);
 * `signal` stops it all.
 *
 * zstd and tar run side by side, zstd's output piped straight into tar: with
 * `--use-compress-program` and an archive on stdin, tar forks a child that only
 * copies the archive to zstd in 10 KiB records (measured on 740 MB of /usr/lib:
 * 0.4-0.8 core-seconds and 0.3-0.5 s more). Each exit is checked on its own.
 */
export async function extractArchive(
  source: Readable | ChildProcess,
  tarArgs: readonly string[],
  signal: AbortSignal,
  progress: Progress
): Promise<void> {
  const program = source instanceof ChildProcess ? source : undefined
  const zArgs = DECOMPRESS.split(' ').slice(1)
  const zstd = spawn('zstd', zArgs, {
    stdio: [program?.stdout ?? 'pipe', 'pipe', 'pipe']
  }) as ChildProcessByStdio<Writable | null, Readable, Readable>
  const args = ['-x', '-f', '-', ...tarArgs]
  const tar = spawn('tar', args, { stdio: [zstd.stdout, 'ignore', 'pipe'] })
  // The next program holds each read end now; without ours open, a writer
  // whose reader quit fails at once instead of filling a pipe no one reads.
  program?.stdout?.destroy()
  zstd.stdout.destroy()
  const kill = (): void => {
    program?.kill()
    zstd.kill()
    tar.kill()
  }
  signal.addEventListener('abort', kill, { once: true })
  let fed: Promise<void>
  if (program) fed = exited(program, program.spawnfile, program.spawnargs.slice(1))
  else {
    const body = source as Readable
    // A listener beside the pipe, not a stage in it: one hop less per chunk.
    body.on('data', () => progress())
    fed = pipeline(body, zstd.stdin!, { signal })
  }
  // Each step ends on its own when another fails (EOF, a closed pipe), so all
  // are waited for, and the cause is reported, not what it caused further on:
  // the transfer failing, zstd on a cut or corrupt archive, tar.
  const steps = await Promise.allSettled([
    fed,
    exited(zstd, 'zstd', zArgs),
    exited(tar, 'tar', args)
  ])
  signal.removeEventListener('abort', kill)
  const failed = steps.flatMap(s => (s.status === 'rejected' ? [s.reason as unknown] : []))
  if (failed.length > 0) throw failed.find(e => !consequence(e)) ?? failed[0]
}

/**
 * A step that failed only because the next one had quit: its output closed
 * under it (the transfer's pipe, zstd's writes, killed by SIGPIPE), or it said
 * so (zstd's write error, curl's exit 23).
 */
function consequence(e: unknown): boolean {
  const { code, signal } = e as { code?: unknown; signal?: unknown }
  const text = e instanceof Error ? e.message : ''
  return (
    code === 'EPIPE' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    signal === 'SIGPIPE' ||
    /^zstd: error 70 : Write error/.test(text) ||
    /^curl: \(23\)/m.test(text)
  )
}

/**
 * Resolves when `child` exits 0; else rejects with its stderr, cause first, the
 * command (`cmd`), and its exit code (`exitCode`) or the signal that ended it.
 */
function exited(child: ChildProcess, cmd: string, args: readonly string[]): Promise<void> {
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve, reject) => {
    child.on('error', e => reject(Object.assign(e, { cmd })))
    child.on('close', (code, signal) => {
      // A progress meter rewrites its line with \r: only what it last said counts.
      const said = stderr.replace(/[^\n]*\r(?=[^\n])/g, '')
      if (code === 0) resolve()
      else
        reject(
          Object.assign(new Error(failure(cmd, args, code ?? signal ?? 1, said)), {
            exitCode: code,
            signal,
            cmd
          })
        )
    })
  })
}
