// The bundle must carry better-sqlite3's addon for both Linux runners.
import { describe, expect, it } from 'vitest'
import { existsSync, readFileSync } from 'node:fs'

// ELF e_machine (little-endian u16 at offset 18): 62 x86-64, 183 AArch64.
const MACHINES = { 'linux-x64': 62, 'linux-arm64': 183 }

describe('dist/', () => {
  it.each(Object.entries(MACHINES))(
    'has the %s addon, built for that machine',
    (target, machine) => {
      const bytes = readFileSync(`dist/prebuilds/${target}.node`)
      expect(bytes.subarray(0, 4).toString('latin1')).toBe('\x7fELF')
      expect(bytes.readUInt16LE(18)).toBe(machine)
    }
  )

  it.each(['main', 'post', 'restore', 'save', 'cli'])('has the %s bundle', entry => {
    expect(existsSync(`dist/${entry}/index.js`)).toBe(true)
  })
})
