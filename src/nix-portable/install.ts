// Installing nix-portable: the release binary for this runner's architecture,
// checked against pinned sha256 digests and kept in the tool cache. A digest
// that does not match is a failure, never a warning, and nothing is cached.
import * as tc from '@actions/tool-cache'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { chmod, rm } from 'node:fs/promises'
import { join } from 'node:path'

export const RELEASES = 'https://github.com/DavHau/nix-portable/releases/download'

/** sha256 of each release binary, agreed by several independent pins (RIG.md). */
export const CHECKSUMS: Record<string, Partial<Record<NixArch, string>>> = {
  v012: {
    x86_64: 'b409c55904c909ac3aeda3fb1253319f86a89ddd1ba31a5dec33d4a06414c72a',
    aarch64: 'af41d8defdb9fa17ee361220ee05a0c758d3e6231384a3f969a314f9133744ea'
  }
}

export type NixArch = 'x86_64' | 'aarch64'

export class UnsupportedRunnerError extends Error {
  override name = 'UnsupportedRunnerError'
}

/** nix-portable's name for the runner's architecture; only Linux x64 and arm64 exist. */
export function nixArch(platform: string = process.platform, arch: string = process.arch): NixArch {
  if (platform === 'linux' && arch === 'x64') return 'x86_64'
  if (platform === 'linux' && arch === 'arm64') return 'aarch64'
  throw new UnsupportedRunnerError(
    `nix-store-cache runs on Linux runners (x64 or arm64); this runner is ${platform}/${arch}. ` +
      'Use a Linux runner, e.g. `runs-on: ubuntu-latest`.'
  )
}

export interface InstallOptions {
  version: string
  arch?: NixArch
  /** Test seam: where releases are downloaded from. */
  baseUrl?: string
  /** Test seam: the pinned digests. */
  checksums?: Record<string, Partial<Record<NixArch, string>>>
  info?: (message: string) => void
}

/** The tool cache wants semver: v012 -> 0.12.0. */
function toolVersion(version: string): string {
  return `0.${Number(version.slice(1))}.0`
}

/** Returns the path of a verified nix-portable executable, downloading it once. */
export async function installNixPortable(o: InstallOptions): Promise<string> {
  const arch = o.arch ?? nixArch()
  const expected = (o.checksums ?? CHECKSUMS)[o.version]?.[arch]
  if (!expected) {
    throw new Error(
      `Input \`nix-portable-version\`: no pinned checksum for ${o.version} on ${arch}; ` +
        `known: ${Object.keys(o.checksums ?? CHECKSUMS).join(', ')}. Pass \`nix-portable\` with a path to use another build.`
    )
  }
  const cached = tc.find('nix-portable', toolVersion(o.version), arch)
  if (cached) return join(cached, 'nix-portable')

  const url = `${o.baseUrl ?? RELEASES}/${o.version}/nix-portable-${arch}`
  o.info?.(`Downloading ${url}`)
  const file = await tc.downloadTool(url)
  try {
    const actual = await sha256(file)
    if (actual !== expected) {
      throw new Error(
        `nix-portable ${o.version} (${arch}) from ${url} has sha256 ${actual}, expected ${expected}: ` +
          'the download is corrupt or not the pinned release. Nothing was installed.'
      )
    }
    await chmod(file, 0o755)
    const dir = await tc.cacheFile(
      file,
      'nix-portable',
      'nix-portable',
      toolVersion(o.version),
      arch
    )
    return join(dir, 'nix-portable')
  } finally {
    await rm(file, { force: true })
  }
}

export async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}
