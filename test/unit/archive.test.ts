// extractArchive with real zstd and tar: what arrives is extracted, and when
// something fails, the error names the cause (the transfer, zstd, or tar), not
// the failure it caused further down the pipe; nothing is left running.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createArchive, extractArchive } from '../../src/transfer/archive.js'
import { compressThreads } from '../../src/transfer/pool.js'

let root: string
let archive: Buffer

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nsc-archive-'))
  const src = join(root, 'src')
  mkdirSync(join(src, 'sub'), { recursive: true })
  // Incompressible, so that a cut or a flipped byte lands in real data.
  writeFileSync(join(src, 'sub', 'big'), randomBytes(3_000_000))
  writeFileSync(join(src, 'small'), 'hello\n')
  archive = execFileSync(
    'tar',
    ['--use-compress-program', 'zstd -q', '-c', '-f', '-', '-C', src, '.'],
    {
      maxBuffer: 1 << 26
    }
  )
})

afterAll(() => rmSync(root, { recursive: true, force: true }))

let n = 0
function target(): string {
  const dir = join(root, `out-${n++}`)
  mkdirSync(dir)
  return dir
}

/** `bytes` in 64 KiB chunks, as a response body arrives. */
function body(bytes: Buffer, failAt?: number): Readable {
  let at = 0
  return new Readable({
    read() {
      if (failAt !== undefined && at >= failAt) {
        this.destroy(new Error('socket hang up'))
        return
      }
      const chunk = bytes.subarray(at, at + 65536)
      at += chunk.length
      this.push(chunk.length > 0 ? chunk : null)
    }
  })
}

const extract = (
  b: Readable,
  dir: string,
  signal = new AbortController().signal
): Promise<void> => {
  let moved = 0
  return extractArchive(b, ['-C', dir], signal, () => moved++)
}

describe('extractArchive', () => {
  it('extracts what arrives, file for file', async () => {
    const dir = target()
    await extract(body(archive), dir)
    expect(readFileSync(join(dir, 'small'), 'utf8')).toBe('hello\n')
    expect(
      readFileSync(join(dir, 'sub', 'big')).equals(readFileSync(join(root, 'src', 'sub', 'big')))
    ).toBe(true)
  })

  it('a cut archive: what zstd said', async () => {
    await expect(extract(body(archive.subarray(0, archive.length >> 1)), target())).rejects.toThrow(
      /premature end.*\(zstd -d -q: exit 1\)/
    )
  })

  it('a corrupt archive: what zstd said', async () => {
    const bad = Buffer.from(archive)
    for (let i = 1000; i < 1100; i++) bad[i] = bad[i]! ^ 0xff
    await expect(extract(body(bad), target())).rejects.toThrow(/\(zstd -d -q: exit 1\)/)
  })

  it('tar failing: what tar said', async () => {
    await expect(extract(body(archive), join(root, 'missing'))).rejects.toThrow(
      /missing.*\(tar -x -f - -C …: exit 2\)/
    )
  })

  it('the transfer failing: its own error, not the broken pipe after it', async () => {
    await expect(extract(body(archive, 1 << 20), target())).rejects.toThrow(/^socket hang up$/)
  })

  it('stopped by its signal: ends as aborted (after tar and zstd ended)', async () => {
    const stop = new AbortController()
    // A body that never ends: only the signal can stop the extraction.
    const stalled = new Readable({ read() {} })
    stalled.push(archive.subarray(0, 65536))
    const done = extract(stalled, target(), stop.signal)
    setTimeout(() => stop.abort(), 200)
    await expect(done).rejects.toThrow(/abort/i)
  })
})

describe('createArchive', () => {
  it.each([undefined, 1, 2])(
    'on %s zstd thread(s): what it makes extracts file for file',
    async threads => {
      const made = createArchive(
        ['-C', join(root, 'src'), '.'],
        new AbortController().signal,
        threads
      )
      const chunks: Buffer[] = []
      made.stream.on('data', (c: Buffer) => chunks.push(c))
      await made.done
      const bytes = Buffer.concat(chunks)
      expect(made.bytes()).toBe(bytes.length)
      const dir = target()
      await extract(body(bytes), dir)
      expect(readFileSync(join(dir, 'sub', 'big'))).toEqual(
        readFileSync(join(root, 'src', 'sub', 'big'))
      )
      expect(readFileSync(join(dir, 'small'), 'utf8')).toBe('hello\n')
    }
  )

  it('shares the cores out among the archives made at once, one thread each at least', () => {
    const cores = availableParallelism()
    expect(compressThreads(1)).toBe(cores)
    expect(compressThreads(cores)).toBe(1)
    expect(compressThreads(cores * 3)).toBe(1)
    expect(compressThreads(0)).toBe(cores)
    if (cores >= 4) expect(compressThreads(2)).toBe(Math.floor(cores / 2))
  })
})
