// Runs bench/<name>.ts: bundles it with ncc (as the action's code is shipped)
// into a temp folder, then runs it with this Node.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const name = process.argv[2]
if (!name) throw new Error('usage: node scripts/bench.mjs <name> (bench/<name>.ts)')
const require = createRequire(import.meta.url)
const ncc = join(dirname(require.resolve('@vercel/ncc/package.json')), 'dist', 'ncc', 'cli.js')
const sqliteDir = dirname(require.resolve('better-sqlite3/package.json'))
const out = mkdtempSync(join(tmpdir(), `nsc-bench-${name}-`))
try {
  execFileSync(
    process.execPath,
    [ncc, 'build', join('bench', `${name}.ts`), '-o', join(out, 'bench'), '-q'],
    {
      stdio: 'inherit'
    }
  )
  cpSync(join(sqliteDir, 'prebuilds'), join(out, 'prebuilds'), { recursive: true })
  execFileSync(process.execPath, [join(out, 'bench', 'index.js'), ...process.argv.slice(3)], {
    stdio: 'inherit',
    // The bundle does not sit in test/rig: tell the rig where its files are.
    env: { ...process.env, NSC_RIG_DIR: join(process.cwd(), 'test', 'rig') }
  })
} finally {
  rmSync(out, { recursive: true, force: true })
}
