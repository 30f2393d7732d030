// In real Chromium against chalice local: what the client recovers goes out at once (30
// adopted events: all of them promptly, not 25 now and 5 after batchTimeout), and a throwing
// option getter cannot reject flush() or wedge the queue.
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, launch, rawRecords, servePages, startApi, tempDir, waitFor } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type W = { A: typeof import('../../src/index'); __ready?: boolean; __errors: string[]; __rejections: string[]; __broken: boolean };

async function setUp(pages: (endpoint: string) => Record<string, string>) {
  const dataDir = tempDir('oa-data-');
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const api = await startApi(await freePort(), dataDir);
  cleanups.push(() => api.stop());
  const site = await servePages(pages(`${api.url}/events`));
  cleanups.push(() => site.close());
  const b = await launch();
  cleanups.push(() => b.close());
  return { dataDir, site, tab: await b.context.newPage() };
}

describe('recovery in Chromium', () => {
  it('30 events adopted after a reload all arrive promptly, in two requests, not 25 now and 5 after batchTimeout', async () => {
    const { dataDir, site, tab } = await setUp((endpoint) => ({
      '/seed.html': '<!doctype html><title>seed</title>',
      '/track.html': `<!doctype html><title>t</title><script src="/dist/owned-analytics.iife.js"></script><script>
        window.__sends = [];
        OwnedAnalytics.initializeAnalytics({ endpoint: ${JSON.stringify(endpoint)}, onSend: (r) => window.__sends.push([performance.now(), r.events]) });
        window.__ready = true;</script>`,
    }));
    await tab.goto(`${site.url}/seed.html`);
    // what a page load that ended (reload, closed tab) leaves: a handed-over entry (t = 0) with 30 events
    await tab.evaluate(() => {
      const events = Array.from({ length: 30 }, (_, i) => ({ eventId: `adopted-${i}`, timestamp: Date.now(), sessionId: 'ended-page-load', seq: i + 1, metricName: 'Adopted', value: i }));
      localStorage.setItem(`owned-analytics:${'ended-page-load'.padEnd(36, '-')}`, JSON.stringify({ t: 0, e: events }));
    });
    const started = Date.now();
    await tab.goto(`${site.url}/track.html`);
    await waitFor('30 adopted events in raw/', () => rawRecords(dataDir).length >= 30 || undefined, 10_000);
    // the page sees the second answer a moment after the server stored its events
    await tab.waitForFunction(() => (window as unknown as { __sends: [number, number][] }).__sends.reduce((n, [, events]) => n + events, 0) >= 30, undefined, { timeout: 10_000 });
    expect(Date.now() - started).toBeLessThan(15_000); // batchTimeout is 30 s
    const sends = await tab.evaluate(() => (window as unknown as { __sends: [number, number][] }).__sends);
    expect(sends.map(([, events]) => events)).toEqual([25, 5]);
    const records = rawRecords(dataDir);
    expect(new Set(records.map((r) => r.eventId)).size).toBe(30);
    expect(records.map((r) => r.seq).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('a batchTimeout getter that throws: flush() resolves, no unhandled rejection reaches the page; once the getter reads again, the events are sent', async () => {
    const { dataDir, site, tab } = await setUp((endpoint) => ({
      '/track.html': `<!doctype html><title>t</title><script src="/dist/owned-analytics.iife.js"></script><script>
        window.__errors = []; window.__rejections = []; window.__broken = true;
        window.addEventListener('unhandledrejection', (e) => window.__rejections.push(String(e.reason)));
        const config = { endpoint: ${JSON.stringify(endpoint)}, batchSize: 25, onError: (e) => window.__errors.push(e.message) };
        Object.defineProperty(config, 'batchTimeout', { get() { if (window.__broken) throw new Error('batchTimeout getter broke'); return 300; } });
        OwnedAnalytics.initializeAnalytics(config);
        window.A = OwnedAnalytics;
        window.__ready = true;</script>`,
    }));
    await tab.goto(`${site.url}/track.html`);
    await tab.waitForFunction(() => (window as unknown as W).__ready === true);
    const session = await tab.evaluate(() => (window as unknown as W).A.getSessionId());
    const flushed = await tab.evaluate(async () => {
      const w = window as unknown as W;
      w.A.trackEvent('First', 1);
      w.A.trackEvent('Second', 2);
      try {
        await w.A.flush();
        await w.A.flush();
        return 'resolved';
      } catch (error) {
        return `rejected: ${String(error)}`;
      }
    });
    expect(flushed).toBe('resolved');
    await waitFor('the 2 events flushed', () => rawRecords(dataDir).filter((r) => r.sessionId === session).length >= 2 || undefined);
    // the getter still throws: a later event waits; once it reads again, its timer sends it
    await tab.evaluate(() => (window as unknown as W).A.trackEvent('WhileBroken', 3));
    await tab.evaluate(() => {
      (window as unknown as W).__broken = false;
      (window as unknown as W).A.trackEvent('AfterFix', 4); // arms the batch timer: 300 ms
    });
    await waitFor('4 events in raw/', () => rawRecords(dataDir).filter((r) => r.sessionId === session).length >= 4 || undefined);
    const names = rawRecords(dataDir)
      .filter((r) => r.sessionId === session)
      .map((r) => r.metricName);
    expect(names.sort()).toEqual(['AfterFix', 'First', 'Second', 'WhileBroken']);
    const page = await tab.evaluate(() => ({ errors: (window as unknown as W).__errors, rejections: (window as unknown as W).__rejections }));
    expect(page.rejections).toEqual([]);
    expect(page.errors).toContain('batchTimeout getter broke');
    expect(await tab.evaluate(() => (window as unknown as W).A.getQueueSize())).toBe(0);
  });
});
