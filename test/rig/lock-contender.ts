// Test rig: a separate process using the location lock.
//   lock-contender DIR hold        takes the lock, prints `holding`, keeps it until killed
//   lock-contender DIR once GO     prints `ready`, waits for the file GO to exist (a
//                                  barrier, so contenders start together), then takes the
//                                  lock once and, inside, creates a marker file exclusively:
//                                  two holders at once collide (EEXIST). Prints `ok`.
import { existsSync } from 'node:fs'
import { unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { withLock } from '../../src/store/lock.js'

const [dir, mode, go] = [process.argv[2]!, process.argv[3], process.argv[4]]
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

async function main(): Promise<void> {
  if (mode === 'hold') {
    await withLock(dir, () => {
      console.log('holding')
      setInterval(() => undefined, 1000) // alive until killed
      return new Promise<void>(() => undefined)
    })
  }
  console.log('ready')
  while (!existsSync(go!)) await sleep(1)
  await withLock(dir, async () => {
    const marker = join(dir, 'inside')
    await writeFile(marker, String(process.pid), { flag: 'wx' })
    await sleep(20)
    await unlink(marker)
  })
  console.log('ok')
}
main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
