import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

it('the leak check fails a test file that leaves a server listening', () => {
  const run = spawnSync(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/fixtures/leaky/vitest.config.ts'],
    { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, CI: 'true' } },
  );
  expect(run.status).not.toBe(0);
  expect(`${run.stdout}${run.stderr}`).toMatch(/left handles open: TCPServerWrap ×1/);
});
