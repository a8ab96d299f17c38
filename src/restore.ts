import { mainRun } from './action/main-impl.js'

await mainRun('restore')
// A transfer given up on a stalled cache service may hold a socket open.
process.exit()
