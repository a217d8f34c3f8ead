import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Generous bounds: these catch a hang, they are not speed checks.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
