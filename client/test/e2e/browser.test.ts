import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, launch, rawRecords, servePages, startApi, tempDir, waitFor, type Api } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A test page: loads the built client (ESM or IIFE), exposes a few hooks on window. */
function page(endpoint: string, kind: 'esm' | 'iife', options: string): string {
  const setup = `
    window.__sends = [];
    window.__errors = [];
    A.initializeAnalytics({ endpoint: ${JSON.stringify(endpoint)}, context: { device: 'e2e', language: 'en_us', appVersion: '1.0.0' },
      onSend: (r) => { window.__sends.push(r); sessionStorage.setItem('sends', JSON.stringify(window.__sends)); }, onError: (e) => window.__errors.push(String(e && e.message)), ${options} });
    window.A = A;
    window.__ready = true;`;
  return kind === 'esm'
    ? `<!doctype html><title>t</title><script type="module">import * as A from '/dist/index.js';${setup}</script>`
    : `<!doctype html><title>t</title><script src="/dist/owned-analytics.iife.js"></script><script>const A = window.OwnedAnalytics;${setup}</script>`;
}

describe('browser client against chalice local', () => {
  it('tracks events (ESM build), navigates away; every event lands in raw/, the page-exit request and an event the page tracks when hidden included', async () => {
    const dataDir = tempDir('oa-data-');
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const api: Api = await startApi(await freePort(), dataDir);
    cleanups.push(() => api.stop());
    const site = await servePages({
      '/track.html': page(`${api.url}/events`, 'esm', 'batchSize: 3, batchTimeout: 600000'),
      '/other.html': '<!doctype html><title>other</title><p>elsewhere</p>',
    });
    cleanups.push(() => site.close());
    const b = await launch();
    cleanups.push(() => b.close());
    const tab = await b.context.newPage();
    const posts: string[] = [];
    const types: string[] = [];
    b.context.on('request', (r) => {
      if (r.url().endsWith('/events')) {
        posts.push(`${r.method()} ${r.headers()['content-type']}`);
        types.push(r.resourceType());
      }
    });
    await tab.goto(`${site.url}/track.html`);
    await tab.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
    const sid = await tab.evaluate(() => {
      const A = (window as unknown as { A: typeof import('../../src/index') }).A;
      A.trackEvent(A.MetricName.ContentPageLoad, undefined, 'HomePage-loaded', { path: '/home' });
      A.trackEvent(A.MetricName.ContentElementInteraction, undefined, 'ButtonClicked-1', JSON.stringify({ action: 'click', button: 'submit' }));
      A.trackEvent(A.MetricName.ContentPlayDuration, 15000, 'VideoPlayed-abc', { videoId: 'abc' });
      A.trackEvent('MyCustomMetric', 42, 'custom-1', { customField: 'value' });
      A.trackEvent(A.MetricName.CustomerSatisfaction, 5);
      // the page's own exit handler, run after the client's (which sent and stored the queue
      // already): its event leaves too
      document.addEventListener('visibilitychange', () => {
        if (document.hidden) A.trackEvent('TimeOnPage', 7);
      });
      return A.getSessionId();
    });
    // the first three went as one fetch batch; two stay queued for the page exit
    await tab.waitForFunction(() => (window as unknown as { __sends: Array<{ status?: number }> }).__sends.some((s) => s.status === 200));
    expect(await tab.evaluate(() => (window as unknown as { A: { getQueueSize(): number } }).A.getQueueSize())).toBe(2);
    await tab.goto(`${site.url}/other.html`);
    const mine = await waitFor('6 records in raw/', () => {
      const r = rawRecords(dataDir).filter((x) => x.sessionId === sid);
      return r.length >= 6 && r;
    });
    expect(mine).toHaveLength(6);
    expect(new Set(mine.map((r) => r.eventId)).size).toBe(6);
    const byName = Object.fromEntries(mine.map((r) => [r.metricName, r]));
    expect(byName.ContentElementInteraction).toMatchObject({ demoContentId: 'ButtonClicked-1', metricAttributes: { action: 'click', button: 'submit' }, device: 'e2e', language: 'en_us', appVersion: '1.0.0' });
    expect(byName.ContentPlayDuration).toMatchObject({ value: 15000 });
    expect(byName.MyCustomMetric).toMatchObject({ value: 42, metricAttributes: { customField: 'value' } });
    expect(byName.CustomerSatisfaction).toMatchObject({ value: 5 });
    expect(byName.ContentPageLoad).toMatchObject({ value: null });
    expect(byName.TimeOnPage).toMatchObject({ value: 7 });
    for (const r of mine) expect(typeof r.serverTimestamp).toBe('string');
    // the batch went as text/plain (no preflight); the last two events left with the page-exit
    // request, the one tracked when the page was hidden with its own: fetch with keepalive (their
    // answers may come after the page is gone, and the DevTools protocol no longer shows them to
    // this page), no beacon
    expect(posts[0]).toBe('POST text/plain;charset=UTF-8');
    expect(types[0]).toBe('fetch');
    const sends = await tab.evaluate(() => JSON.parse(sessionStorage.getItem('sends') ?? '[]'));
    expect(sends[0]).toEqual({ transport: 'fetch', events: 3, status: 200, body: { accepted: 3, rejected: [] } });
    expect(sends.every((s: { transport: string }) => s.transport === 'fetch')).toBe(true);
  });

  it('server down while tracking, up again after a reload (IIFE build): every event arrives exactly once', async () => {
    const dataDir = tempDir('oa-data-');
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}/events`;
    const site = await servePages({
      // retries start at 30–60 s, so only the reload can deliver the first events
      '/track.html': page(endpoint, 'iife', 'batchSize: 25, batchTimeout: 500, retryBaseDelay: 60000'),
      '/other.html': '<!doctype html><title>other</title>',
    });
    cleanups.push(() => site.close());
    const b = await launch();
    cleanups.push(() => b.close());
    const tab = await b.context.newPage();
    await tab.goto(`${site.url}/track.html`);
    await tab.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
    await tab.evaluate(() => {
      const A = (window as unknown as { A: typeof import('../../src/index') }).A;
      for (let i = 0; i < 6; i++) A.trackEvent('OfflineEvent', i, `offline-${i}`, { i });
    });
    // the send failed (connection refused) and a retry is scheduled
    await tab.waitForFunction(() => (window as unknown as { __sends: Array<{ status?: number }> }).__sends.some((s) => s.status === 0));
    // localStorage writes are coalesced (one per second): wait for the mirror
    await tab.waitForFunction(() => Object.keys(localStorage).some((x) => x.startsWith('owned-analytics:')));
    const queued: string[] = await tab.evaluate(() => {
      const k = Object.keys(localStorage).find((x) => x.startsWith('owned-analytics:'))!;
      return JSON.parse(localStorage.getItem(k)!).e.map((e: { eventId: string }) => e.eventId);
    });
    expect(queued).toHaveLength(6);

    const api = await startApi(port, dataDir);
    cleanups.push(() => api.stop());
    await tab.reload();
    await tab.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
    await tab.evaluate(() => {
      const A = (window as unknown as { A: typeof import('../../src/index') }).A;
      for (let i = 0; i < 3; i++) A.trackEvent('OnlineEvent', i);
    });
    await tab.waitForFunction(() => (window as unknown as { A: { getQueueSize(): number } }).A.getQueueSize() === 0);
    await tab.evaluate(() => (window as unknown as { A: typeof import('../../src/index') }).A.trackEvent('ExitEvent', 1));
    await tab.goto(`${site.url}/other.html`);
    const records = await waitFor('10 records in raw/', () => {
      const r = rawRecords(dataDir);
      return r.length >= 10 && r;
    });
    await new Promise((r) => setTimeout(r, 1000)); // a late duplicate would show up here
    const all = rawRecords(dataDir);
    const ids = all.map((r) => String(r.eventId));
    expect(records.length).toBe(10);
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
    for (const id of queued) expect(ids.filter((x) => x === id)).toHaveLength(1);
    expect(all.filter((r) => r.metricName === 'OfflineEvent').map((r) => r.value).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(all.filter((r) => r.metricName === 'ExitEvent')).toHaveLength(1);
  });

  it('two tabs of one origin, one closed while the server is down: each event arrives exactly once', async () => {
    const dataDir = tempDir('oa-data-');
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const site = await servePages({ '/track.html': page(`http://127.0.0.1:${port}/events`, 'iife', 'batchSize: 25, batchTimeout: 300') });
    cleanups.push(() => site.close());
    const b = await launch();
    cleanups.push(() => b.close());
    type W = { A: typeof import('../../src/index'); __ready?: boolean; __sends: Array<{ status?: number }> };
    const open = async () => {
      const tab = await b.context.newPage();
      await tab.goto(`${site.url}/track.html`);
      await tab.waitForFunction(() => (window as unknown as W).__ready === true);
      return tab;
    };
    const [tabA, tabB] = [await open(), await open()];
    for (const [tab, name] of [[tabA, 'TabA'], [tabB, 'TabB']] as const) {
      await tab.evaluate((n) => {
        for (let i = 0; i < 4; i++) (window as unknown as W).A.trackEvent(n, i);
      }, name);
      await tab.waitForFunction(() => (window as unknown as W).__sends.some((s) => s.status === 0));
    }
    await tabA.close({ runBeforeUnload: true }); // its queue is handed over in localStorage
    const api = await startApi(port, dataDir);
    cleanups.push(() => api.stop());
    const tabC = await open(); // adopts tab A's queue; tab B keeps (and retries) its own
    await tabC.evaluate(() => (window as unknown as W).A.trackEvent('TabC', 0));
    const records = await waitFor('9 records in raw/', () => {
      const r = rawRecords(dataDir);
      return r.length >= 9 && r;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const all = rawRecords(dataDir);
    expect(records.length).toBe(9);
    expect(all).toHaveLength(9);
    expect(new Set(all.map((r) => r.eventId)).size).toBe(9);
    const count = (n: string) => all.filter((r) => r.metricName === n).length;
    expect([count('TabA'), count('TabB'), count('TabC')]).toEqual([4, 4, 1]);
  });
});
