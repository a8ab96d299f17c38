// The plain way, as a user would script it, for bench:cache to measure against:
// `tar -c | zstd -T0 -3` of the store paths and `zstd -d | tar -x`, to a file
// (local) or streamed to and from the same S3 gateway (s3).
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export interface Baseline {
  /** Archives the store paths named in `list` (one a line) as `name`. */
  save(storeDir: string, list: string, name: string): Promise<void>
  restore(name: string, into: string): Promise<void>
}

export function fileBaseline(dir: string): Baseline {
  return {
    async save(storeDir, list, name) {
      execFileSync('bash', [
        '-c',
        'tar -c -C "$1" -T "$2" | zstd -T0 -3 -q -o "$3"',
        '_',
        storeDir,
        list,
        join(dir, name)
      ])
    },
    async restore(name, into) {
      execFileSync('bash', [
        '-c',
        'zstd -d -T0 -q -c "$1" | tar -x -C "$2"',
        '_',
        join(dir, name),
        into
      ])
    }
  }
}

export function s3Baseline(client: S3Client, bucket: string): Baseline {
  return {
    async save(storeDir, list, name) {
      const tar = spawn(
        'bash',
        ['-c', 'tar -c -C "$1" -T "$2" | zstd -T0 -3 -q -c', '_', storeDir, list],
        { stdio: ['ignore', 'pipe', 'inherit'] }
      )
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: `baseline/${name}`, Body: tar.stdout },
        queueSize: 4,
        partSize: 16 * 1024 * 1024
      })
      await upload.done()
    },
    async restore(name, into) {
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `baseline/${name}` }))
      const x = spawn('bash', ['-c', 'zstd -d -T0 -q | tar -x -C "$1"', '_', into], {
        stdio: ['pipe', 'inherit', 'inherit']
      })
      const closed = new Promise<void>((resolve, reject) =>
        x.on('close', code => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))))
      )
      await Promise.all([pipeline(r.Body as Readable, x.stdin), closed])
    }
  }
}
