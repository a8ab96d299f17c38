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
parentPort.on('message', ({ id, path }) => {
  try {
    parentPort.postMessage({ id, digest: narHashSync(path, fs, crypto) })
  } catch (e) {
    parentPort.postMessage({ id, error: e instanceof Error ? e.message : String(e) })
  }
})`

interface Reply {
  id: number
  digest?: NarDigest
  error?: string
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
  width = availableParallelism()
): Promise<(NarDigest | Error)[]> {
  const results: (NarDigest | Error)[] = new Array(jobs.length)
  if (jobs.length === 0) return results
  const order = jobs.map((j, i) => ({ ...j, i })).sort((a, b) => b.weight - a.weight)
  const workers = Array.from(
    { length: Math.max(1, Math.min(width, jobs.length)) },
    () => new Worker(WORKER_SOURCE, { eval: true })
  )
  let next = 0
  try {
    await Promise.all(
      workers.map(
        w =>
          new Promise<void>((resolve, reject) => {
            const feed = (): void => {
              const job = order[next++]
              if (!job) return resolve()
              w.postMessage({ id: job.i, path: job.path })
            }
            w.on('message', (r: Reply) => {
              results[r.id] = r.digest ?? new Error(r.error ?? 'unknown error')
              feed()
            })
            w.on('error', reject)
            feed()
          })
      )
    )
  } finally {
    await Promise.all(workers.map(w => w.terminate()))
  }
  return results
}
