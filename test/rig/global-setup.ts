// Test rig: one folder for the whole `vitest run`, removed at its end, for
// what the rig makes once per test file and cannot remove from inside one (the
// CLI bundle and the Node binary copied where the unprivileged user can run
// them: 150 MB a file, which piled up in /tmp run after run).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'nsc-run-'))
  chmodSync(dir, 0o755) // the unprivileged user runs the CLI from inside it
  // Test files run in child processes, which inherit this.
  process.env.NSC_RUN_DIR = dir
  return () => rmSync(dir, { recursive: true, force: true })
}
