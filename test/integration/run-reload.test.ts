import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningInstance, runFromFile } from '../../src/surfaces/cli/run.js';
import { waitFor } from '../helpers/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-reload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('portcullis run: reload', () => {
  it('two reloads at once leave one set of log jails: a line is counted once', async () => {
    const log = join(dir, 'app.log');
    writeFileSync(log, '');
    const file = join(dir, 'run.yaml');
    writeFileSync(
      file,
      [
        'log: { level: silent }',
        `store: { sqlite: ${join(dir, 'run.db')} }`,
        'jails:',
        '  app:',
        `    source: { log: [${log}] }`,
        '    filter: { failregex: ["^fail <HOST>$"] }',
        '    maxretry: 2',
        '    ignoreself: false',
        '',
      ].join('\n'),
    );
    let instance: RunningInstance | undefined;
    try {
      instance = await runFromFile(file);
      const running = instance;
      await Promise.all([running.reload(), running.reload()]);
      appendFileSync(log, 'fail 192.0.2.1\n');
      await waitFor(() => running.guard.stats.reports >= 1, {
        timeoutMs: 5_000,
        message: 'the first report',
      });
      await running.guard.idle();
      // Kept: a negative, a second set of jails would count the line again; give its polls time.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(running.guard.stats.reports).toBe(1);
      expect(running.guard.isBanned('192.0.2.1')).toBe(false);
    } finally {
      await instance?.stop();
    }
  });
});
