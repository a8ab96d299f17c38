// Archives as streams: `tar -c | zstd` into an upload as it is made, and a
// download through `zstd -d` into `tar -x` as it arrives; never whole on disk or
// in memory. The s3 backend moves its entries this way; local writes files with
// the same zstd (github's go through @actions/cache, which runs zstd alike).
import { spawn } from 'node:child_process'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { failure } from '../exec.js'
import type { Progress } from './breaker.js'

/**
 * zstd as @actions/cache runs it (`zstdmt`, level 3), so entries are the same
 * either way. Level 3 is zstd's default: near the best ratio per second.
 * --long would save a few percent but needs the flag to decompress (RIG.md).
 */
export const COMPRESS = 'zstd -T0 -3 -q'
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
 */
export function createArchive(tarArgs: readonly string[], signal: AbortSignal): Archive {
  const args = ['--use-compress-program', COMPRESS, '-c', '-f', '-', ...tarArgs]
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
 * Streams a compressed archive from `body` through `zstd -d` into `tar -x -f -
 * <args>`; `progress` is called as bytes arrive, `signal` stops it all.
 *
 * zstd and tar run side by side, zstd's output piped straight into tar: with
 * `--use-compress-program` and an archive on stdin, tar forks a child that only
 * copies the archive to zstd in 10 KiB records (measured on 740 MB of /usr/lib:
 * 0.4-0.8 core-seconds and 0.3-0.5 s more). Each exit is checked on its own.
 */
export async function extractArchive(
  body: Readable,
  tarArgs: readonly string[],
  signal: AbortSignal,
  progress: Progress
): Promise<void> {
  const zArgs = DECOMPRESS.split(' ').slice(1)
  const zstd = spawn('zstd', zArgs, { stdio: ['pipe', 'pipe', 'pipe'] })
  const args = ['-x', '-f', '-', ...tarArgs]
  const tar = spawn('tar', args, { stdio: [zstd.stdout, 'ignore', 'pipe'] })
  // tar holds the read end now; without ours open, zstd's writes fail if tar quits.
  zstd.stdout.destroy()
  const kill = (): void => {
    zstd.kill()
    tar.kill()
  }
  signal.addEventListener('abort', kill, { once: true })
  // A listener beside the pipe, not a stage in it: one hop less per chunk.
  body.on('data', () => progress())
  // Each step ends on its own when another fails (EOF, a closed pipe), so all
  // are waited for, and the cause is reported, not what it caused further on:
  // the transfer failing, zstd on a cut or corrupt archive, tar.
  const steps = await Promise.allSettled([
    pipeline(body, zstd.stdin, { signal }),
    exited(zstd, 'zstd', zArgs),
    exited(tar, 'tar', args)
  ])
  signal.removeEventListener('abort', kill)
  const failed = steps.flatMap(s => (s.status === 'rejected' ? [s.reason as unknown] : []))
  if (failed.length > 0) throw failed.find(e => !consequence(e)) ?? failed[0]
}

/**
 * A step that failed only because the next one had quit: the transfer's pipe
 * into zstd closed, or zstd could not write to tar (killed by SIGPIPE, or it
 * said so).
 */
function consequence(e: unknown): boolean {
  const { code, signal } = e as { code?: unknown; signal?: unknown }
  return (
    code === 'EPIPE' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    signal === 'SIGPIPE' ||
    /^zstd: error 70 : Write error/.test(e instanceof Error ? e.message : '')
  )
}

/**
 * Resolves when `child` exits 0; else rejects with its stderr, cause first, and
 * the signal that ended it, if one did.
 */
function exited(
  child: ReturnType<typeof spawn>,
  cmd: string,
  args: readonly string[]
): Promise<void> {
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) resolve()
      else
        reject(
          Object.assign(new Error(failure(cmd, args, code ?? signal ?? 1, stderr)), { signal })
        )
    })
  })
}
