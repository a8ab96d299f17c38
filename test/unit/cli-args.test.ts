import { describe, expect, it } from 'vitest'
import { parseArgs } from '../../src/cli/args.js'
import { rewriteDebugLines } from '../../src/cli/debug-lines.js'
import { InputError } from '../../src/errors.js'

describe('parseArgs', () => {
  it('takes --verbose without a value, and every input as a flag', () => {
    const p = parseArgs([
      'restore',
      '--verbose',
      '--systemDependencies',
      'hello',
      '--allow-user-namespaces=true'
    ])
    expect(p.verbose).toBe(true)
    expect(p.flags.get('systemDependencies')).toBe('hello')
    expect(p.flags.get('allow-user-namespaces')).toBe('true')
    expect(parseArgs(['save', '--systemDependencies', 'x']).verbose).toBe(false)
  })

  it.each([[['nope']], [['run', '--bogus', 'x']], [['run', 'stray']], [['run', '--key']]])(
    'refuses %j',
    argv => {
      expect(() => parseArgs(argv)).toThrow(InputError)
    }
  )
})

describe('rewriteDebugLines', () => {
  const text = 'restore: hit\n::debug::Body: {%0A  "ok": 100%25%0A}\nsave: done\n'
  it('drops debug lines unless verbose', () => {
    expect(rewriteDebugLines(text, false)).toBe('restore: hit\nsave: done\n')
  })
  it('prints them decoded when verbose', () => {
    expect(rewriteDebugLines(text, true)).toBe(
      'restore: hit\ndebug: Body: {\n  "ok": 100%\n}\nsave: done\n'
    )
  })
  it('leaves other output alone', () => {
    expect(rewriteDebugLines('a ::debug:: b\n', false)).toBe('a ::debug:: b\n')
  })
})
