// Builds one ncc bundle per entry point into dist/<entry>/index.js, and copies
// better-sqlite3's prebuilt binaries for the Linux runners once into
// dist/prebuilds/, shared by every bundle (ncc cannot follow the addon's
// dynamic require; src/db/native.ts finds them).
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const ENTRIES = ['main', 'post', 'restore', 'save', 'cli']
const PREBUILDS = ['linux-x64', 'linux-arm64']

const require = createRequire(import.meta.url)
const sqliteDir = dirname(require.resolve('better-sqlite3/package.json'))
const ncc = join(dirname(require.resolve('@vercel/ncc/package.json')), 'dist', 'ncc', 'cli.js')

rmSync('dist', { recursive: true, force: true })
for (const entry of ENTRIES) {
  const src = join('src', `${entry}.ts`)
  if (!existsSync(src)) continue
  const out = join('dist', entry)
  execFileSync(
    process.execPath,
    [ncc, 'build', src, '-o', out, '--license', 'licenses.txt', '-q'],
    {
      stdio: 'inherit'
    }
  )
  // ncc copies every platform's addon next to each bundle; the bundles load the
  // shared dist/prebuilds/ instead (src/db/native.ts).
  rmSync(join(out, 'prebuilds'), { recursive: true, force: true })
}
mkdirSync(join('dist', 'prebuilds'), { recursive: true })
for (const p of PREBUILDS) {
  copyFileSync(join(sqliteDir, 'prebuilds', `${p}.node`), join('dist', 'prebuilds', `${p}.node`))
}
