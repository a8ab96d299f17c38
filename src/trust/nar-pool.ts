// NAR hashes of many store paths on every core: one worker thread per core, each
// hashing whole paths, largest first. The workers run narHashSync's own source
// (an eval'd script), so the bundles need no separate worker file.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { narHashSync, type NarDigest } from './nar.js'

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const fs = require('node:fs')
const crypto = require('node:crypto')
const narHashSync = ${narHashSync.toString()}
const buf = Buffer.allocUnsafe(1 << 20)
parentPort.on('message', ({ id, path }) => {
  try {
    parentPort.postMessage({ id, digest: narHashSync(path, fs, crypto, buf) })
  } catch (e) {
    parentPort.postMessage({ id, error: e instanceof Error ? e.message : String(e) })
  }
})`

interface Reply {
  id: number
  digest?: NarDigest
  error?: string
}

/**
 * Worker threads (one per core, started on first use) hashing whole store paths;
 * jobs queue until a worker is free. Close it when done.
 */
export class NarPool {
  private workers: Worker[] = []
  private idle: Worker[] = []
  private queue: { id: number; path: string }[] = []
  private waiting = new Map<number, (r: NarDigest | Error) => void>()
  private next = 0

  constructor(private readonly width = availableParallelism()) {}

  /**
   * Starts every worker now: a worker takes about 30 ms (two, 55 ms of CPU) to
   * start, better spent while the first transfers wait on the network than
   * when the first pack is there to hash.
   */
  warm(): void {
    while (this.workers.length < this.width) this.idle.push(this.start())
  }

  /** The NAR digest of `path`, or an Error when it cannot be read. Never rejects. */
  hash(path: string): Promise<NarDigest | Error> {
    const id = this.next++
    const result = new Promise<NarDigest | Error>(resolve => this.waiting.set(id, resolve))
    this.queue.push({ id, path })
    this.pump()
    return result
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(w => w.terminate()))
    this.workers = []
    this.idle = []
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let w = this.idle.pop()
      if (!w && this.workers.length < this.width) w = this.start()
      if (!w) return
      w.postMessage(this.queue.shift())
    }
  }

  private start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true })
    w.unref()
    w.on('message', (r: Reply) => {
      this.waiting.get(r.id)?.(r.digest ?? new Error(r.error ?? 'unknown error'))
      this.waiting.delete(r.id)
      this.idle.push(w)
      this.pump()
    })
    w.on('error', e => {
      // A worker that died fails what was waiting; the rest goes on without it.
      for (const resolve of this.waiting.values()) resolve(e)
      this.waiting.clear()
      this.workers = this.workers.filter(x => x !== w)
      this.idle = this.idle.filter(x => x !== w)
    })
    this.workers.push(w)
    return w
  }
}

export interface HashJob {
  /** The folder (or file) to serialise. */
  path: string
  /** Expected size, to start the largest first; 0 when unknown. */
  weight: number
}

/** NAR digests of `jobs`, in their order; a path that cannot be read gets an Error. */
export async function narHashes(
  jobs: readonly HashJob[],
  pool?: NarPool
): Promise<(NarDigest | Error)[]> {
  const use = pool ?? new NarPool()
  const order = jobs.map((j, i) => ({ ...j, i })).sort((a, b) => b.weight - a.weight)
  const results: (NarDigest | Error)[] = new Array(jobs.length)
  try {
    await Promise.all(order.map(async j => (results[j.i] = await use.hash(j.path))))
  } finally {
    if (!pool) await use.close()
  }
  return results
}
