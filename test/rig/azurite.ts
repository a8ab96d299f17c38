// Test rig: Microsoft's storage emulator, Azurite, as the real blob store behind
// the cache service. Started on 127.0.0.1, port 0, in memory.
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import {
  BlobSASPermissions,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential
} from '@azure/storage-blob'

// Azurite's documented development account.
const ACCOUNT = 'devstoreaccount1'
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const CONTAINER = 'actions-cache'

export interface Azurite {
  endpoint: string
  sasUrl(blob: string): string
  stop(): Promise<void>
}

/** Where the process started: a benchmark bundled elsewhere runs from the checkout. */
const CHECKOUT = process.cwd()

function azuriteBin(): string {
  // From the rig's own folder, or (a benchmark bundled elsewhere) from the checkout.
  let pkg: string
  try {
    pkg = createRequire(import.meta.url).resolve('azurite/package.json')
  } catch {
    pkg = createRequire(join(CHECKOUT, 'package.json')).resolve('azurite/package.json')
  }
  return join(dirname(pkg), 'dist', 'src', 'blob', 'main.js')
}

export async function startAzurite(): Promise<Azurite> {
  const child = spawn(
    process.execPath,
    [
      azuriteBin(),
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--inMemoryPersistence',
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--loose',
      '--silent'
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] }
  )
  const port = await readPort(child)
  const endpoint = `http://127.0.0.1:${port}/${ACCOUNT}`
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY)
  const service = new BlobServiceClient(endpoint, credential)
  await service.getContainerClient(CONTAINER).createIfNotExists()
  return {
    endpoint,
    sasUrl(blob: string): string {
      const sas = generateBlobSASQueryParameters(
        {
          containerName: CONTAINER,
          blobName: blob,
          permissions: BlobSASPermissions.parse('racwd'),
          expiresOn: new Date(Date.now() + 3600_000)
        },
        credential
      ).toString()
      return `${endpoint}/${CONTAINER}/${encodeURIComponent(blob)}?${sas}`
    },
    stop: () => stopChild(child)
  }
}

function readPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`Azurite did not start:\n${out}`)), 30_000)
    const onData = (chunk: Buffer): void => {
      out += chunk.toString()
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/i.exec(out)
      if (m?.[1]) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('exit', code => {
      clearTimeout(timer)
      reject(new Error(`Azurite exited (${code}) before listening:\n${out}`))
    })
  })
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}
