import { postRun } from './action/post-impl.js'

await postRun('save')
