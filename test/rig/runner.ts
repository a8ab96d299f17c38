// Test rig: runs the built dist/ bundles the way the Actions runner does: inputs
// as INPUT_* (defaults from action.yml), file commands (GITHUB_OUTPUT, GITHUB_STATE,
// GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY), STATE_* for post, and what a
// step exported carried to the next steps.
import { mkdirSync, readFileSync, writeFileSync, existsSync, chownSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { cliRuntime } from './jobs.js'
import { NOBODY, runIn, type RunResult, type World } from './world.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface StepResult extends RunResult {
  outputs: Record<string, string>
  state: Record<string, string>
  env: Record<string, string>
  path: string[]
  summary: string
}

/** Parses a file command file: `name=value` lines and `name<<DELIM` heredocs. */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const value: string[] = []
      while (++i < lines.length && lines[i] !== heredoc[2]) value.push(lines[i]!)
      out[heredoc[1]!] = value.join('\n')
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1)
    }
  }
  return out
}

function defaults(actionFile: string): Record<string, string> {
  const doc = parse(readFileSync(join(ROOT, actionFile), 'utf8')) as {
    inputs: Record<string, { default?: string }>
  }
  return Object.fromEntries(Object.entries(doc.inputs).map(([k, v]) => [k, v.default ?? '']))
}

/** A job: steps share the world, exported variables and PATH additions. */
export class Job {
  private exported: Record<string, string> = {}
  private paths: string[] = []
  private step = 0
  constructor(
    readonly world: World,
    readonly baseEnv: NodeJS.ProcessEnv = {}
  ) {}

  /** Runs dist/<entry>/index.js as a step of `actionFile` with `inputs`. */
  async run(
    entry: 'main' | 'post' | 'restore' | 'save',
    inputs: Record<string, string>,
    actionFile = 'action.yml',
    state: Record<string, string> = {}
  ): Promise<StepResult> {
    const dir = join(this.world.runnerTemp, `step-${++this.step}`)
    mkdirSync(dir, { recursive: true })
    const files = {
      GITHUB_OUTPUT: 'output',
      GITHUB_STATE: 'state',
      GITHUB_ENV: 'env',
      GITHUB_PATH: 'path',
      GITHUB_STEP_SUMMARY: 'summary'
    }
    const fileEnv: Record<string, string> = {}
    for (const [k, f] of Object.entries(files)) {
      fileEnv[k] = join(dir, f)
      writeFileSync(fileEnv[k], '')
      if (this.world.unprivileged) chownSync(fileEnv[k], NOBODY.uid, NOBODY.gid)
    }
    if (this.world.unprivileged) chownSync(dir, NOBODY.uid, NOBODY.gid)
    const env: NodeJS.ProcessEnv = {
      ...this.baseEnv,
      ...this.exported,
      ...fileEnv,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: this.world.workspace,
      RUNNER_TEMP: this.world.runnerTemp,
      RUNNER_TOOL_CACHE: join(this.world.home, 'toolcache'),
      PATH: [...this.paths, this.world.env.PATH].join(':')
    }
    for (const [k, v] of Object.entries({ ...defaults(actionFile), ...inputs }))
      env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v
    for (const [k, v] of Object.entries(state)) env[`STATE_${k}`] = v
    const { node } = cliRuntime()
    const bundle = join(dirname(dirname(cliRuntime().cli)), entry, 'index.js')
    const r = await runIn(this.world, node, [bundle], env)
    const read = (k: string): string =>
      existsSync(fileEnv[k]!) ? readFileSync(fileEnv[k]!, 'utf8') : ''
    const result: StepResult = {
      ...r,
      outputs: parseFileCommands(read('GITHUB_OUTPUT')),
      state: parseFileCommands(read('GITHUB_STATE')),
      env: parseFileCommands(read('GITHUB_ENV')),
      path: read('GITHUB_PATH').split('\n').filter(Boolean),
      summary: read('GITHUB_STEP_SUMMARY')
    }
    Object.assign(this.exported, result.env)
    this.paths.unshift(...result.path)
    return result
  }

  /** main, then post with main's state, as one `uses:` step. */
  async action(inputs: Record<string, string>): Promise<{ main: StepResult; post: StepResult }> {
    const main = await this.run('main', inputs)
    if (main.code !== 0) return { main, post: { ...main, outputs: {}, summary: '' } }
    const post = await this.run('post', inputs, 'action.yml', main.state)
    return { main, post }
  }
}
