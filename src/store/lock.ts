// One nix-store-cache operation at a time on a location: jobs on one self-hosted
// machine may share a store, and two restores moving the same folders, or a save
// reading while a restore writes, must not interleave.
//
// The lock is the kernel's (flock(2), through util-linux's `flock`, held by a
// child process whose stdin is our pipe): it is released when its holder exits
// or dies, however it dies, so there is never a stale lock to take over, no
// check-then-remove race, and no pid to be fooled by (pid reuse, another pid
// namespace). An `owner` file beside it only says who holds it, for the wait
// message; nothing trusts it.
import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { CacheError, message } from '../errors.js'

export interface LockOptions {
  timeoutMs?: number
  /** Called every `everyMs` while another holder has the lock. */
  onWait?: (holder: string, waitedMs: number) => void
  everyMs?: number
  /** What the holder is doing, for others' wait messages. */
  what?: string
}

interface Owner {
  pid: number
  host: string
  since: string
  what: string
}

export async function withLock<T>(
  dir: string,
  f: () => Promise<T>,
  o: LockOptions = {}
): Promise<T> {
  await mkdir(dir, { recursive: true })
  const release = await acquire(dir, o)
  try {
    const owner: Owner = {
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
      what: o.what ?? 'nix-store-cache'
    }
    await writeFile(join(dir, 'owner'), JSON.stringify(owner))
    return await f()
  } finally {
    await release()
  }
}

/** Who holds the lock in `dir`, as its owner file says. */
export async function holderOf(dir: string): Promise<string> {
  try {
    const o = JSON.parse(await readFile(join(dir, 'owner'), 'utf8')) as Partial<Owner>
    return `process ${o.pid} on ${o.host} (${o.what}, since ${o.since})`
  } catch {
    return 'another process'
  }
}

/** Resolves once the lock is held; the function it returns releases it. */
function acquire(dir: string, o: LockOptions): Promise<() => Promise<void>> {
  const timeoutMs = o.timeoutMs ?? 10 * 60_000
  const everyMs = o.everyMs ?? 10_000
  const started = Date.now()
  // `cat` holds flock's child alive until our end of the pipe closes.
  const child = spawn(
    'flock',
    ['--exclusive', join(dir, 'lock'), 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    {
      stdio: ['pipe', 'pipe', 'pipe']
    }
  )
  const exited = new Promise<void>(resolve => child.once('close', () => resolve()))
  const release = async (): Promise<void> => {
    child.stdin.end()
    await exited
  }
  return new Promise((resolve, reject) => {
    let stderr = ''
    let settled = false
    const timers: NodeJS.Timeout[] = []
    const done = (): boolean => {
      timers.forEach(t => clearTimeout(t))
      const first = !settled
      settled = true
      return first
    }
    const fail = (e: Error): void => {
      if (!done()) return
      child.kill('SIGKILL')
      reject(e)
    }
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.stdout.once('data', () => {
      if (done()) resolve(release)
    })
    child.once('error', e => fail(new CacheError(`cannot lock ${dir}: ${message(e)}`)))
    child.once('close', code => {
      if (code !== null)
        fail(new CacheError(`cannot lock ${dir}: flock exited ${code}: ${stderr.trim()}`))
    })
    const tell = (): void => {
      if (settled) return
      void holderOf(dir).then(h => o.onWait?.(h, Date.now() - started))
      timers.push(setTimeout(tell, everyMs))
    }
    timers.push(setTimeout(tell, Math.min(everyMs, 1000)))
    timers.push(
      setTimeout(() => {
        void holderOf(dir).then(h =>
          fail(
            new CacheError(
              `${join(dir, 'lock')} is still held by ${h} after ${Math.round(timeoutMs / 1000)} s`
            )
          )
        )
      }, timeoutMs)
    )
  })
}
