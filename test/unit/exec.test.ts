import { describe, expect, it } from 'vitest'
import { failure, run } from '../../src/exec.js'

describe('run', () => {
  it('puts what the command said first, then which command failed', async () => {
    const err = await run('sh', [
      '-c',
      'echo noise; echo "zstd: error 70 : Write error : No space left on device" >&2; exit 3',
      'x',
      'y',
      'z'
    ]).catch((e: unknown) => e as Error)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(
      /^zstd: error 70 : Write error : No space left on device \(sh -c .* …: exit 3\)$/
    )
  })

  it('says so when the command said nothing', () => {
    expect(failure('tar', ['-cf', 'a'], 2, '\n')).toBe('no message (tar -cf a: exit 2)')
  })
})
