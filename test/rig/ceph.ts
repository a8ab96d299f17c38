// Test rig: a real S3 store, Ceph's RADOS gateway on one node (ceph.sh), for the
// s3 backend's tests and benchmark. Needs root and Debian's ceph-mon, ceph-osd
// and radosgw (.ci/run installs them).
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { RIG_DIR } from './world.js'

export interface Ceph {
  endpoint: string
  /** The credentials, as the AWS SDK's default chain reads them. */
  env: Record<string, string>
  /** Creates a bucket and returns its name. */
  bucket(name: string): Promise<string>
  client(): S3Client
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export async function startCeph(): Promise<Ceph> {
  const dir = await mkdtemp(join(tmpdir(), 'nsc-ceph-'))
  const [mon, rgw] = [await freePort(), await freePort()]
  const access = 'NSCRIGACCESSKEY00001'
  const secret = 'nsc-rig-secret-key-0123456789abcdefghij'
  const script = join(RIG_DIR, 'ceph.sh')
  const sh = promisify(execFile)
  try {
    await sh('bash', [script, 'start', dir, String(mon), String(rgw), access, secret], {
      timeout: 120_000
    })
  } catch (e) {
    await sh('bash', [script, 'stop', dir]).catch(() => undefined)
    throw new Error(`Ceph did not start: ${(e as { stderr?: string }).stderr ?? String(e)}`, {
      cause: e
    })
  }
  const endpoint = `http://127.0.0.1:${rgw}`
  const env = {
    AWS_ACCESS_KEY_ID: access,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_REGION: 'us-east-1'
  }
  const client = (): S3Client =>
    new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: access, secretAccessKey: secret },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED'
    })
  return {
    endpoint,
    env,
    client,
    async bucket(name) {
      await client().send(new CreateBucketCommand({ Bucket: name }))
      return name
    },
    async stop() {
      await sh('bash', [script, 'stop', dir]).catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    }
  }
}
