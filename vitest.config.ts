import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/rig/global-setup.ts'],
    // Integration tests build real store paths with nix and start real servers.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: files in parallel would fight over them and over the rig's servers.
    fileParallelism: false,
    reporters: ['default']
  }
})
