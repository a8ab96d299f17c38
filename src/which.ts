// @actions/io's which(), without its noise: it prints "Unexpected error
// attempting to determine if executable file exists" for every PATH folder the
// user cannot search (a runner's PATH may list root's). Those folders cannot hold
// anything this user could run, so the search leaves them out.
import { which as ioWhich } from '@actions/io'
import { accessSync, constants } from 'node:fs'
import { delimiter } from 'node:path'

export async function which(tool: string): Promise<string> {
  const path = process.env.PATH
  const searchable = (path ?? '').split(delimiter).filter(dir => {
    try {
      accessSync(dir, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
  process.env.PATH = searchable.join(delimiter)
  try {
    return await ioWhich(tool, false)
  } finally {
    process.env.PATH = path
  }
}
