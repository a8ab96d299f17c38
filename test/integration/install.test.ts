// Downloading nix-portable through @actions/tool-cache from a local HTTP server
// (the release host cannot be reached here): the checksum decides.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installNixPortable, nixArch } from '../../src/nix-portable/install.js'

const body = randomBytes(256 * 1024)
const digest = createHash('sha256').update(body).digest('hex')

describe('installNixPortable', () => {
  let server: Server
  let baseUrl: string
  let hits = 0
  let dir: string
  const saved = { ...process.env }

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++
      const truncated = req.url?.includes('v098')
      const data = truncated ? body.subarray(0, body.length / 2) : body
      if (!req.url?.endsWith('/nix-portable-x86_64')) {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, { 'content-length': data.length }).end(data)
    })
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/releases`
    dir = mkdtempSync(join(tmpdir(), 'nsc-install-'))
    process.env.RUNNER_TOOL_CACHE = join(dir, 'toolcache')
    process.env.RUNNER_TEMP = join(dir, 'temp')
  })
  afterAll(async () => {
    process.env = saved
    await new Promise(r => server.close(r))
    rmSync(dir, { recursive: true, force: true })
  })

  const checksums = {
    v099: { x86_64: digest },
    v098: { x86_64: digest },
    v097: { x86_64: '0'.repeat(64) }
  }

  it('installs a download whose checksum matches, executable, and then uses the tool cache', async () => {
    const path = await installNixPortable({ version: 'v099', arch: 'x86_64', baseUrl, checksums })
    expect(readFileSync(path).equals(body)).toBe(true)
    expect(statSync(path).mode & 0o111).toBe(0o111)
    const before = hits
    expect(await installNixPortable({ version: 'v099', arch: 'x86_64', baseUrl, checksums })).toBe(
      path
    )
    expect(hits).toBe(before)
  })

  it.each([
    ['a wrong checksum', 'v097'],
    ['a truncated download', 'v098']
  ])('fails clearly on %s and caches nothing', async (_what, version) => {
    await expect(
      installNixPortable({ version, arch: 'x86_64', baseUrl, checksums })
    ).rejects.toThrow(
      /has sha256 [0-9a-f]{64}, expected [0-9a-f]{64}: the download is corrupt or not the pinned release/
    )
    const cached = join(process.env.RUNNER_TOOL_CACHE!, 'nix-portable')
    const versions = existsSync(cached) ? readdirSync(cached) : []
    expect(versions).not.toContain(`0.${Number(version.slice(1))}.0`)
    expect(readdirSync(process.env.RUNNER_TEMP!)).toEqual([])
  })

  it('refuses a version with no pinned checksum', async () => {
    await expect(
      installNixPortable({ version: 'v001', arch: 'x86_64', baseUrl, checksums })
    ).rejects.toThrow(/Input `nix-portable-version`: no pinned checksum for v001/)
  })

  it('knows which runners it supports', () => {
    expect(nixArch('linux', 'x64')).toBe('x86_64')
    expect(nixArch('linux', 'arm64')).toBe('aarch64')
    expect(() => nixArch('darwin', 'arm64')).toThrow(
      /runs on Linux runners \(x64 or arm64\); this runner is darwin\/arm64/
    )
    expect(() => nixArch('linux', 'ia32')).toThrow(/linux\/ia32/)
  })
})
