import { mainRun } from './action/main-impl.js'

await mainRun('main')
