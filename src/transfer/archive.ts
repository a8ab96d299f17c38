// Archives as streams: `tar -c | zstd` into an upload as it is made, and a
// download through `zstd -d` into `tar -x` as it arrives; never whole on disk or
// in memory. The s3 and github backends move their entries this way.
import { spawn } from 'node:child_process'
import { Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { failure } from '../exec.js'
import type { Progress } from './breaker.js'

/** zstd as @actions/cache runs it (`zstdmt`, level 3), so entries are the same either way. */
const ZSTD = ['-T0', '-3', '-q', '-c']

export interface Archive {
  /** The compressed archive, as it is made. */
  stream: Readable
  /** Resolves once tar and zstd both exited 0. */
  done: Promise<void>
  /** Compressed bytes so far. */
  bytes(): number
  kill(): void
}

/** `tar -c -f - <args>` through zstd; `signal` kills both. */
export function createArchive(tarArgs: readonly string[], signal: AbortSignal): Archive {
  const args = ['-c', '-f', '-', ...tarArgs]
  const tar = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const zstd = spawn('zstd', ZSTD, { stdio: ['pipe', 'pipe', 'pipe'] })
  const kill = (): void => {
    tar.kill()
    zstd.kill()
  }
  signal.addEventListener('abort', kill, { once: true })
  const done = Promise.all([exited(tar, 'tar', args), exited(zstd, 'zstd', ZSTD)]).then(
    () => signal.removeEventListener('abort', kill),
    (e: unknown) => {
      kill()
      throw e
    }
  )
  // Nothing handled yet is fine: whoever streams awaits it.
  done.catch(() => undefined)
  tar.stdout.pipe(zstd.stdin)
  let bytes = 0
  zstd.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length))
  return { stream: zstd.stdout, done, bytes: () => bytes, kill }
}

/**
 * Streams a compressed archive from `body` through zstd into `tar -x -f -
 * <args>`; `progress` is called as bytes arrive, `signal` stops it all.
 */
export async function extractArchive(
  body: Readable,
  tarArgs: readonly string[],
  signal: AbortSignal,
  progress: Progress
): Promise<void> {
  const args = ['--use-compress-program', 'zstd -d -q', '-x', '-f', '-', ...tarArgs]
  const tar = spawn('tar', args, { stdio: ['pipe', 'ignore', 'pipe'] })
  const done = exited(tar, 'tar', args)
  try {
    const meter = new Transform({
      transform(chunk: Buffer, _enc, next) {
        progress()
        next(null, chunk)
      }
    })
    await Promise.all([pipeline(body, meter, tar.stdin, { signal }), done])
  } catch (e) {
    tar.kill()
    body.destroy()
    throw e
  }
}

/** Resolves when `child` exits 0; else rejects with its stderr, cause first. */
function exited(
  child: ReturnType<typeof spawn>,
  cmd: string,
  args: readonly string[]
): Promise<void> {
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code =>
      code === 0 ? resolve() : reject(new Error(failure(cmd, args, code ?? 1, stderr)))
    )
  })
}
