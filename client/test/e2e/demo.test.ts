// The demo page (client/demo/index.html) in Chromium against chalice local: the inspector's
// stored rows and rejected events appear as you click, with no console error; a screenshot
// is saved under client/test-results/. With no API behind ?api=, the errors name that
// endpoint and the resends are labelled as retries.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_DIR, freePort, launch, servePages, startApi, tempDir } from './helpers';

const DEMO = readFileSync(join(CLIENT_DIR, 'demo', 'index.html'), 'utf8');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function openDemo(endpoint: string): Promise<{ tab: Page; problems: string[] }> {
  const site = await servePages({ '/demo/index.html': DEMO });
  cleanups.push(() => site.close());
  const b = await launch();
  cleanups.push(() => b.close());
  const tab = await b.context.newPage();
  const problems: string[] = [];
  tab.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await tab.goto(`${site.url}/demo/index.html?api=${encodeURIComponent(endpoint)}`);
  return { tab, problems };
}

describe('the demo page', () => {
  it('shows what the API stored as CSV rows and what it rejected, live, without a console error', async () => {
    const dataDir = tempDir('oa-demo-');
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const api = await startApi(await freePort(), dataDir);
    cleanups.push(() => api.stop());
    const { tab, problems } = await openDemo(`${api.url}/events`);
    await tab.waitForFunction(() => document.querySelector('#inspector-status')?.textContent?.includes('refreshed'));

    await tab.click('text=Click “Subscribe”');
    await tab.click('text=Custom metric');
    await tab.click('text=Track an event the API rejects');
    await tab.click('#flush');
    await tab.waitForFunction(() => document.querySelectorAll('#stored tbody tr').length === 2);
    await tab.waitForFunction(() => document.querySelectorAll('#rejected li.bad').length === 1);

    const header = await tab.$$eval('#stored thead th', (ths) => ths.map((th) => th.textContent));
    expect(header.slice(0, 9)).toEqual(['timestamp', 'serverTimestamp', 'sessionId', 'metricName', 'value', 'demoContentId', 'device', 'deviceCodename', 'language']);
    expect(header).toContain('attr_button');
    expect(header).toContain('attr_customField');
    const rows = await tab.$$eval('#stored tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    expect(rows[0]).toContain('MyCustomMetric'); // newest first
    expect(rows[1]).toContain('ButtonClicked-subscribe');
    const rejected = await tab.textContent('#rejected');
    expect(rejected).toContain('event #2');
    expect(rejected).toContain('TooDeep');
    expect(await tab.textContent('#log')).toContain('HTTP 200');

    // The queue's numbers are not clipped: 12 events leave two-digit numbers in the list.
    await tab.click('#burst');
    const clipped = await tab.$eval('#queue', (ol) => parseFloat(getComputedStyle(ol).paddingLeft) < 28);
    expect(clipped).toBe(false);
    await tab.click('#flush');
    await tab.waitForFunction(() => document.querySelectorAll('#stored tbody tr').length === 14);

    const dir = join(CLIENT_DIR, 'test-results');
    mkdirSync(dir, { recursive: true });
    const shot = join(dir, 'demo.png');
    await tab.screenshot({ path: shot, fullPage: true });
    console.log(`demo page screenshot: ${shot}`);

    // "Clear both lists" empties the inspector (DELETE, a cross-origin preflight included).
    await tab.click('#clear');
    await tab.waitForFunction(() => document.querySelectorAll('#stored tbody tr').length === 0);
    await tab.waitForFunction(() => document.querySelector('#rejected')?.textContent === '(none)');
    expect(problems).toEqual([]);
  });

  it('with no API behind ?api=, names that endpoint in its errors and labels the resends as retries', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}/events`;
    const { tab } = await openDemo(endpoint);
    await tab.waitForFunction(() => document.querySelector('#inspector-status')?.classList.contains('bad'));
    expect(await tab.textContent('#inspector-status')).toContain(endpoint.replace('/events', '/_dev'));
    await tab.click('text=Rated 5 stars');
    await tab.click('#flush');
    // The client retries 0.5–1 s after the first failure.
    await tab.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('retry 1'), null, { timeout: 15_000 });
    const log = (await tab.textContent('#log')) ?? '';
    expect(log).toContain(`network error (is the API running at ${endpoint}?)`);
    expect(log).not.toContain('8000');
  });
});
