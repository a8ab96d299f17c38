// The s3 backend: `<prefix><key>.tar.zst` objects in a bucket of any S3 API
// (AWS, Ceph RGW, MinIO, R2). Archives stream: tar | zstd into a multipart
// upload, a GET through zstd into tar; never whole on disk or in memory. An
// object appears only when its upload completes, so an interrupted save leaves
// nothing a reader can find. Credentials: the AWS SDK's default chain only.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type _Object
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { mkdir } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { S3Config } from '../config.js'
import { CacheError } from '../errors.js'
import { removeTree } from '../store/fsops.js'
import { which } from '../which.js'
import type { StoreTrees } from '../store/pack-dir.js'
import { createArchive, extractArchive } from '../transfer/archive.js'
import { curlGet } from '../transfer/curl.js'
import { Breaker, type Progress } from '../transfer/breaker.js'
import { storeArgs, sweepStages } from './local.js'
import type { Backend, SaveOptions, SaveOutcome, Stored } from './types.js'
import { NEAR } from '../transfer/pool.js'

const SUFFIX = '.tar.zst'
/** Last-use marks: `<prefix>used/<name>`, empty objects whose LastModified is the last use. */
const MARKS = 'used/'
/** Parts of the multipart upload in flight at once, and their size. */
const QUEUE = 4
const PART = 16 * 1024 * 1024

export class S3Backend implements Backend {
  readonly name = 's3'
  readonly transfer = NEAR
  /** A PUT replaces an object atomically: readers see the old or the new one. */
  readonly canReplace = true
  private readonly client: S3Client
  private readonly breaker: Breaker
  /** curl's path, found at the first restore; undefined: the SDK streams alone. */
  private curl: Promise<string | undefined>

  constructor(
    readonly config: S3Config,
    readonly stageRoot: string,
    /** Input `stall-timeout`: a silent request is retried after it, a call given up past its deadline. */
    stallMs = 60_000,
    /** curl to download with (see fetch); false: the SDK alone. */
    curl: string | false = 'curl'
  ) {
    this.breaker = new Breaker(stallMs)
    this.curl = curl === false ? Promise.resolve(undefined) : which(curl).catch(() => undefined)
    this.client = new S3Client({
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle,
      // Checksums only where S3 requires them: with other stores a streamed
      // upload may otherwise be stored still chunk-encoded (RIG.md).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK's standard retries (5xx, 503 SlowDown, throttling) with backoff.
      maxAttempts: 4,
      requestHandler: { connectionTimeout: 5000, requestTimeout: stallMs }
    })
  }

  slotDir(slot: string): string {
    return `${this.stageRoot}/${slot}`
  }

  /**
   * Stage folders of jobs that are gone, as on the local backend. Incomplete
   * multipart uploads are the bucket's lifecycle rule's to remove (README).
   */
  async sweep(): Promise<void> {
    await sweepStages(this.stageRoot)
  }

  async restore(
    dir: string,
    primaryKey: string,
    prefixes: readonly string[]
  ): Promise<string | undefined> {
    return this.guard(`the restore of ${primaryKey}`, 0, async (signal, progress) => {
      // Packs are asked for by their exact key: one GET, no listing. Snapshot
      // and index lookups are by prefix (ending in `-`): straight to the listing.
      if (!primaryKey.endsWith('-') && (await this.fetch(primaryKey, dir, signal, progress))) {
        return primaryKey
      }
      const key = await this.newest([primaryKey, ...prefixes], signal)
      if (key === undefined) return undefined
      // Deleted between the listing and the GET: a miss.
      return (await this.fetch(key, dir, signal, progress)) ? key : undefined
    })
  }

  /**
   * Extracts object `key` into `dir` (made here); false when there is no such
   * object. curl fetches it when this machine has curl; whatever curl meets (a
   * missing object, a refusal, a certificate it does not trust), the SDK asks
   * again and says what it is, and once curl failed other than with an HTTP
   * error, the SDK fetches the rest alone.
   */
  private async fetch(
    key: string,
    dir: string,
    signal: AbortSignal,
    progress: Progress
  ): Promise<boolean> {
    await mkdir(dir, { recursive: true })
    const curl = await this.curl
    if (curl) {
      try {
        const url = await getSignedUrl(
          this.client,
          new GetObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) }),
          { expiresIn: 300 }
        )
        await extractArchive(curlGet(curl, url, progress), ['-C', dir], signal, progress)
        return true
      } catch (e) {
        const { cmd, exitCode } = e as { cmd?: unknown; exitCode?: unknown }
        if (signal.aborted || cmd !== curl) throw e
        // Exit 22 is an HTTP error (--fail): the object's, not curl's.
        if (exitCode !== 22) this.curl = Promise.resolve(undefined)
        await removeTree(dir)
        await mkdir(dir, { recursive: true })
      }
    }
    const body = await this.get(key, signal)
    if (!body) return false
    await extractArchive(body, ['-C', dir], signal, progress)
    return true
  }

  async save(
    dir: string,
    key: string,
    trees?: StoreTrees,
    o: SaveOptions = {}
  ): Promise<SaveOutcome> {
    return this.guard(`the save of ${key}`, o.bytes ?? 0, async (signal, progress) => {
      // A pack's key names its paths: asking first can spare a whole upload.
      // Snapshot and index keys are new every time: asking would be a wasted call.
      if (trees && !o.replace && (await this.exists(key, signal))) return { result: 'exists' }
      const archive = createArchive(
        ['-C', dir, '.', ...(await storeArgs(dir, trees))],
        signal,
        o.threads
      )
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.config.bucket, Key: this.objectKey(key), Body: archive.stream },
        queueSize: QUEUE,
        partSize: PART,
        leavePartsOnError: false
      })
      upload.on('httpUploadProgress', progress)
      const stop = (): void => void upload.abort().catch(() => undefined)
      signal.addEventListener('abort', stop)
      try {
        await Promise.all([upload.done(), archive.done])
      } catch (e) {
        archive.kill()
        stop()
        throw e
      } finally {
        signal.removeEventListener('abort', stop)
      }
      return { result: 'saved', archiveBytes: archive.bytes() }
    })
  }

  private objectKey(key: string): string {
    return `${this.config.prefix}${key}${SUFFIX}`
  }

  private async get(key: string, abortSignal: AbortSignal): Promise<Readable | undefined> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) }),
        { abortSignal }
      )
      return r.Body as Readable
    } catch (e) {
      if (notFound(e)) return undefined
      throw e
    }
  }

  private async exists(key: string, abortSignal: AbortSignal): Promise<boolean> {
    try {
      await this.client.send(
        new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) }),
        { abortSignal }
      )
      return true
    } catch (e) {
      if (notFound(e)) return false
      throw e
    }
  }

  /** The newest object whose key starts with each prefix in turn (ListObjectsV2, paged). */
  private async newest(
    prefixes: readonly string[],
    signal: AbortSignal
  ): Promise<string | undefined> {
    for (const prefix of prefixes) {
      let best: _Object | undefined
      for (const o of await this.listObjects(`${this.config.prefix}${prefix}`, signal)) {
        if (!o.Key?.endsWith(SUFFIX)) continue
        const t = o.LastModified?.getTime() ?? 0
        const b = best?.LastModified?.getTime() ?? -1
        if (!best || t > b || (t === b && o.Key > best.Key!)) best = o
      }
      if (best) return best.Key!.slice(this.config.prefix.length, -SUFFIX.length)
    }
    return undefined
  }

  /** Every object under `prefix` (ListObjectsV2, paged). */
  private async listObjects(prefix: string, abortSignal: AbortSignal): Promise<_Object[]> {
    const all: _Object[] = []
    let token: string | undefined
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.config.bucket,
          Prefix: prefix,
          ...(token ? { ContinuationToken: token } : {})
        }),
        { abortSignal }
      )
      all.push(...(page.Contents ?? []))
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return all
  }

  async list(): Promise<Stored[]> {
    return this.guard('the listing', 0, async signal => {
      const p = this.config.prefix
      return (await this.listObjects(p, signal))
        .filter(o => o.Key?.endsWith(SUFFIX) && !o.Key.slice(p.length).includes('/'))
        .map(o => stored(o, o.Key!.slice(p.length, -SUFFIX.length)))
    })
  }

  async remove(key: string): Promise<void> {
    await this.deleteObject(this.objectKey(key))
  }

  async markUsed(group: string): Promise<void> {
    await this.guard(`the mark of ${group}`, 0, abortSignal =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.config.bucket,
          Key: `${this.config.prefix}${MARKS}${group}`,
          // Said outright: an empty body has no length the SDK can see, and it
          // would print a warning about streams of unknown length.
          Body: '',
          ContentLength: 0
        }),
        { abortSignal }
      )
    )
  }

  async marks(): Promise<Stored[]> {
    return this.guard('the listing of marks', 0, async signal => {
      const p = `${this.config.prefix}${MARKS}`
      return (await this.listObjects(p, signal)).map(o => stored(o, o.Key!.slice(p.length)))
    })
  }

  async removeMark(group: string): Promise<void> {
    await this.deleteObject(`${this.config.prefix}${MARKS}${group}`)
  }

  private async deleteObject(Key: string): Promise<void> {
    await this.guard(`the deletion of ${Key}`, 0, abortSignal =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key }), {
        abortSignal
      })
    )
  }

  /**
   * One call, of `what`, moving about `bytes`, under the breaker's deadline;
   * any failure as a cache error naming the bucket and the endpoint.
   */
  private async guard<T>(
    what: string,
    bytes: number,
    f: (signal: AbortSignal, progress: Progress) => Promise<T>
  ): Promise<T> {
    try {
      return await this.breaker.run(what, bytes, f)
    } catch (e) {
      const where = `S3 bucket ${this.config.bucket} at ${this.config.endpoint || `AWS (${this.config.region})`}`
      throw new CacheError(`${where}: ${describe(e)}`)
    }
  }
}

function stored(o: _Object, key: string): Stored {
  return { key, bytes: o.Size ?? 0, modified: o.LastModified?.getTime() ?? 0 }
}

function notFound(e: unknown): boolean {
  return (
    e instanceof S3ServiceException &&
    (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata.httpStatusCode === 404) &&
    e.name !== 'NoSuchBucket'
  )
}

function describe(e: unknown): string {
  if (e instanceof S3ServiceException) {
    const hint: Record<string, string> = {
      NoSuchBucket: 'the bucket does not exist: create it, or fix `s3-bucket`',
      InvalidAccessKeyId: 'the access key is unknown: check the credentials the AWS SDK finds',
      SignatureDoesNotMatch: 'the secret key is wrong: check the credentials the AWS SDK finds',
      AccessDenied:
        'access denied: the credentials need the actions the README lists on the prefix',
      SlowDown: 'the store is throttling (503 SlowDown), still after retries'
    }
    return `${e.name} (HTTP ${e.$metadata.httpStatusCode ?? '?'}): ${hint[e.name] ?? e.message}`
  }
  return e instanceof Error ? e.message : String(e)
}
