import { postRun } from './action/post-impl.js'

await postRun('save')
// A transfer given up on a stalled cache service may hold a socket open.
process.exit()
