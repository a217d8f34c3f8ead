import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generous bounds: these catch a hang, they are not speed checks.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
