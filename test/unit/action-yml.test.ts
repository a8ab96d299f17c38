// action.yml, the sub-actions and the README against the code that reads inputs.
import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { parseConfig } from '../../src/config.js'

interface ActionYml {
  inputs: Record<string, { default?: string; required?: boolean }>
  outputs: Record<string, unknown>
  runs: { using: string; main: string; post?: string; 'post-if'?: string }
}
const load = (f: string): ActionYml => parse(readFileSync(f, 'utf8')) as ActionYml

/** The input names parseConfig reads, with each backend (s3 reads its own). */
function namesRead(): Set<string> {
  const names = new Set<string>()
  for (const backend of ['', 's3']) {
    const given: Record<string, string> = { systemDependencies: 'gcc', backend, 's3-bucket': 'b-b' }
    parseConfig(
      name => {
        names.add(name)
        return given[name] ?? ''
      },
      { HOME: '/h' }
    )
  }
  return names
}

describe('action.yml', () => {
  const action = load('action.yml')

  it('runs on node24 with main and post bundles', () => {
    expect(action.runs).toEqual({
      using: 'node24',
      main: 'dist/main/index.js',
      post: 'dist/post/index.js',
      'post-if': 'success()'
    })
  })

  it.each(['action.yml', 'restore/action.yml', 'save/action.yml'])(
    '%s declares only inputs the code reads',
    file => {
      const read = namesRead()
      for (const name of Object.keys(load(file).inputs)) expect(read.has(name), name).toBe(true)
    }
  )

  it('declares every input the code reads, with defaults the code agrees with', () => {
    const read = namesRead()
    expect(new Set(Object.keys(action.inputs))).toEqual(read)
    const withDefaults = parseConfig(
      n => action.inputs[n]?.default ?? (n === 'systemDependencies' ? 'gcc' : ''),
      { HOME: '/h' }
    )
    const withEmpty = parseConfig(n => (n === 'systemDependencies' ? 'gcc' : ''), { HOME: '/h' })
    expect(withDefaults).toEqual(withEmpty)
  })

  it('has the sub-actions point at their own bundles', () => {
    expect(load('restore/action.yml').runs.main).toBe('../dist/restore/index.js')
    expect(load('save/action.yml').runs.main).toBe('../dist/save/index.js')
  })

  it('is documented in the README, every input and output', () => {
    const readme = readFileSync('README.md', 'utf8')
    for (const name of [...Object.keys(action.inputs), ...Object.keys(action.outputs)]) {
      expect(readme, name).toContain(`\`${name}\``)
    }
  })
})
