// The action's inputs, read once: the signing key is masked in every log line
// before anything could print it.
import * as core from '@actions/core'
import { parseConfig, type Config } from '../config.js'

export function readConfig(): Readonly<Config> {
  const secret = core.getInput('signing-key').trim()
  if (secret) core.setSecret(secret)
  return parseConfig(name => core.getInput(name), process.env)
}
