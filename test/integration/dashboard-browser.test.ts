import { mkdirSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminFixture, startAdminFixture } from '../helpers/admin.js';
import { send } from '../helpers/http-client.js';

// The dashboard in a real browser (Debian's chromium driven by playwright-core): log in, see a
// ban made by a client of the proxy appear live, unban it from the page.

// Functions given to waitForFunction run in the page (a string would be eval, which the page's
// CSP forbids); this test is compiled without the DOM library, hence the
// small type (erased: the page sees `globalThis.document`).
interface PageDocument {
  querySelectorAll(selector: string): { length: number };
  querySelector(selector: string): { textContent: string | null } | null;
}

let fixture: AdminFixture;
let browser: Browser;

beforeAll(async () => {
  fixture = await startAdminFixture({
    withProxy: true,
    config: {
      defaults: { ignoreip: [], ignoreself: false },
      jails: { 'web-auth': { source: 'http', filter: { status: [401] }, maxretry: 3, bantime: '1h' } },
    },
  });
  // Chromium starts in about a second here, but once (CI, 2026-12-01) it did not answer for 30 s:
  // each start is given 60 s, and a second one follows a start that timed out.
  const launch = () =>
    chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], timeout: 60_000 });
  browser = await launch().catch(launch);
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await fixture?.close();
});

describe('dashboard in chromium', () => {
  it('logs in with the token, shows a ban live, unbans it from the page', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(`http://127.0.0.1:${fixture.port}/`);

    // A wrong token is refused and the page says so.
    await page.fill('#token', 'not-the-token-0000000000');
    await page.click('#login-button');
    await page.waitForSelector('#login-error:has-text("wrong")');
    expect(await page.isVisible('#app')).toBe(false);

    await page.fill('#token', fixture.token);
    await page.click('#login-button');
    await page.waitForSelector('#jails-body tr[data-jail="web-auth"]');
    await page.waitForSelector('#stream-state.live');
    expect(await page.textContent('#bans-empty')).toBe('no active bans');
    expect(await page.evaluate("sessionStorage.getItem('portcullis-token')")).toBe(fixture.token);

    // A client fails three logins through the proxy: banned, and the row appears without a reload.
    const proxyPort = fixture.proxy?.addresses[0]?.port as number;
    for (let i = 0; i < 3; i++) await send(proxyPort, { path: '/status/401', from: '127.0.0.7' });
    await fixture.guard.idle();
    expect(fixture.guard.isBanned('127.0.0.7')).toBe(true);
    const row = page.locator('#bans-body tr[data-target="127.0.0.7"]');
    await row.waitFor({ timeout: 5_000 });
    expect(await row.locator('td').nth(1).textContent()).toBe('web-auth');
    await page.waitForSelector('#feed li.ban');
    // A hostile reason is shown as text, never run as markup.
    await fixture.guard.ban('192.0.2.66', { reason: '<img src=x onerror="window.__pwned=1">' });
    const hostile = page.locator('#bans-body tr[data-target="192.0.2.66"] td.reason');
    await hostile.waitFor();
    expect(await hostile.textContent()).toBe('<img src=x onerror="window.__pwned=1">');
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.locator('#bans-body img').count()).toBe(0);

    // Search narrows the table.
    await page.fill('#ban-search', '127.0.0');
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: PageDocument }).document.querySelectorAll('#bans-body tr')
          .length === 1,
    );
    await page.fill('#ban-search', '');
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: PageDocument }).document.querySelectorAll('#bans-body tr')
          .length === 2,
    );

    // The jails table shows fail2ban's four numbers after the next refresh.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: PageDocument }).document.querySelector(
          '#jails-body tr[data-jail="web-auth"] td:nth-child(6)',
        )?.textContent === '1',
      undefined,
      { timeout: 10_000 },
    );

    mkdirSync('.tmp', { recursive: true });
    await page.screenshot({ path: '.tmp/dashboard.png', fullPage: true });

    await row.locator('button.unban').click();
    await row.waitFor({ state: 'detached', timeout: 5_000 });
    expect(fixture.guard.isBanned('127.0.0.7')).toBe(false);
    expect((await fixture.control.decisions()).map((d) => d.target)).toEqual(['192.0.2.66']);
    expect((await send(proxyPort, { path: '/', from: '127.0.0.7' })).status).toBe(200);
    await page.waitForSelector('#feed li.unban');
    // The one 401 is the wrong token's (chromium logs failed responses); nothing else went wrong.
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    await page.close();
  });
});
