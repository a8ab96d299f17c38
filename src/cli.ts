#!/usr/bin/env node
import { cliMain } from './cli/main.js'

try {
  process.exitCode = await cliMain(process.argv.slice(2))
} catch (e) {
  console.error(`nix-store-cache: ${e instanceof Error ? e.message : String(e)}`)
  process.exitCode = 1
}
// A transfer given up on a stalled cache service may hold a socket open.
process.exit()
