// Measured delivery end to end: Chromium pages number their events (seq), a collector in front
// of `chalice local` loses some or goes down, and `python -m exporter delivery` over the stored
// data must name exactly what was lost and give the right rate. The soak (SOAK_SECONDS=n) runs
// two tabs against a flapping collector with reloads and prints what the report measures next
// to what the pages created.
import { rmSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { deliveryReport, startCollector, type Collector, type CollectorMode } from './collector';
import { freePort, launch, rawRecords, servePages, startApi, tempDir, waitFor } from './helpers';

type W = { A: typeof import('../../src/index'); __ready?: boolean; __sends: Array<{ status?: number }> };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A page that counts as one session: the client, and a page view (its seq 1) at load. */
function trackingPage(endpoint: string, options: string): string {
  return `<!doctype html><title>t</title><script type="module">
    import * as A from '/dist/index.js';
    window.__sends = [];
    A.initializeAnalytics({ endpoint: ${JSON.stringify(endpoint)}, context: { device: 'e2e' },
      onSend: (r) => window.__sends.push(r), ${options} });
    A.trackEvent('ContentPageLoad', undefined, location.pathname);
    window.A = A;
    window.__ready = true;
  </script>`;
}

interface Setup {
  dataDir: string;
  collector: Collector;
  site: string;
  open(): Promise<Page>;
}

async function setUp(options: string): Promise<Setup> {
  const dataDir = tempDir('oa-delivery-');
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const api = await startApi(await freePort(), dataDir);
  cleanups.push(() => api.stop());
  const collector = await startCollector(api.url);
  cleanups.push(() => collector.close());
  const pages = await servePages({
    '/track.html': trackingPage(`${collector.url}/events`, options),
    '/other.html': '<!doctype html><title>other</title>',
  });
  cleanups.push(() => pages.close());
  const browser = await launch();
  cleanups.push(() => browser.close());
  return {
    dataDir,
    collector,
    site: pages.url,
    open: async () => {
      const tab = await browser.context.newPage();
      await load(tab, `${pages.url}/track.html`);
      return tab;
    },
  };
}

async function load(tab: Page, url: string): Promise<void> {
  await tab.goto(url);
  await tab.waitForFunction(() => (window as unknown as W).__ready === true);
}

/** Tracks `n` events on the page; returns its session id. */
const track = (tab: Page, n: number): Promise<string> =>
  tab.evaluate((count) => {
    const { A } = window as unknown as W;
    for (let i = 0; i < count; i++) A.trackEvent('Step', i);
    return A.getSessionId()!;
  }, n);

const sessionOf = (tab: Page): Promise<string> => tab.evaluate(() => (window as unknown as W).A.getSessionId()!);

/** Distinct (sessionId, eventId) stored under raw/, per session. */
function storedPerSession(dataDir: string): Map<string, number> {
  const seen = new Set<string>();
  const perSession = new Map<string, number>();
  for (const record of rawRecords(dataDir)) {
    const key = `${String(record.sessionId)}\u0000${String(record.eventId)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    perSession.set(String(record.sessionId), (perSession.get(String(record.sessionId)) ?? 0) + 1);
  }
  return perSession;
}

const total = (counts: Map<string, number>): number => [...counts.values()].reduce((a, b) => a + b, 0);

describe('delivery report against Chromium pages', () => {
  it('a collector that answers 200 but drops chosen events: the report names exactly those gaps and the rate', async () => {
    const started = new Date();
    const s = await setUp('batchSize: 4, batchTimeout: 600000');
    const tab = await s.open();
    const sid = await sessionOf(tab);
    // 3 goes missing between numbers of one request; 7 and 8 with the send before the exit's
    s.collector.drop.set(sid, new Set([3, 7, 8]));
    await track(tab, 3); // 1 (page view) to 4: one full batch
    await tab.waitForFunction(() => (window as unknown as W).__sends.length === 1);
    await track(tab, 4); // 5 to 8
    await tab.waitForFunction(() => (window as unknown as W).__sends.length === 2);
    await track(tab, 2); // 9 and 10 stay queued for the page exit
    await tab.goto(`${s.site}/other.html`);
    await waitFor('7 events stored', () => storedPerSession(s.dataDir).get(sid) === 7);
    expect(s.collector.counts.dropped).toBe(3);

    const report = deliveryReport(s.dataDir, started);
    expect(report).toMatchObject({ sessions: 1, received: 7, gaps: 3, gapsInside: 1, gapsAtEnd: 2, duplicates: 0, rate: 0.7 });
    expect(report.days.flatMap((day) => day.gapRuns)).toEqual([
      { sessionId: sid, first: 3, last: 3, where: 'inside' },
      { sessionId: sid, first: 7, last: 8, where: 'end' },
    ]);
  });

  it('two tabs with reloads through an outage: every event arrives and the report says 100 %', async () => {
    const started = new Date();
    const s = await setUp('batchSize: 5, batchTimeout: 300, retryBaseDelay: 200, retryMaxDelay: 1000');
    const created = new Map<string, number>();
    const add = (sid: string, n: number): void => void created.set(sid, (created.get(sid) ?? 0) + n);
    const tabs = [await s.open(), await s.open()];
    for (const tab of tabs) add(await track(tab, 3), 4); // the page view and 3

    s.collector.mode = 'reset'; // the outage: connections fail
    for (const tab of tabs) add(await track(tab, 4), 4);
    // Both pages have seen the outage, so they keep their queues at exit rather than beacon them
    // (a beacon into an outage the page has not noticed is lost: see the soak).
    for (const tab of tabs) await tab.waitForFunction(() => (window as unknown as W).__sends.some((send) => send.status === 0));
    await tabs[0].reload(); // its queue is handed over in localStorage and adopted
    await tabs[0].waitForFunction(() => (window as unknown as W).__ready === true);
    add(await track(tabs[0], 2), 3);
    await tabs[1].goto(`${s.site}/other.html`); // left during the outage, then back
    await load(tabs[1], `${s.site}/track.html`);
    add(await track(tabs[1], 2), 3);
    s.collector.mode = '503'; // still down, answering now
    for (const tab of tabs) add(await track(tab, 1), 1);
    await new Promise((resolve) => setTimeout(resolve, 1500));

    s.collector.mode = 'up';
    for (const tab of tabs) await tab.waitForFunction(() => (window as unknown as W).A.getQueueSize() === 0, undefined, { timeout: 20_000 });
    for (const tab of tabs) add(await track(tab, 2), 2); // the exit send takes these
    for (const tab of tabs) await tab.goto(`${s.site}/other.html`);
    await waitFor(`${total(created)} events stored`, () => total(storedPerSession(s.dataDir)) === total(created));
    expect(s.collector.counts.reset + s.collector.counts.refused).toBeGreaterThan(0);

    const report = deliveryReport(s.dataDir, started);
    expect(report).toMatchObject({ sessions: created.size, received: total(created), gaps: 0, rate: 1 });
    expect(storedPerSession(s.dataDir)).toEqual(created);
  });

  const soakSeconds = Number(process.env.SOAK_SECONDS ?? 0);
  it.skipIf(!soakSeconds)(
    'soak: two tabs, a flapping collector, reloads; the report against what the pages created',
    async () => {
      const started = new Date();
      const s = await setUp('batchSize: 10, batchTimeout: 1000, retryBaseDelay: 250, retryMaxDelay: 4000');
      const created = new Map<string, number>();
      const add = (sid: string, n: number): void => void created.set(sid, (created.get(sid) ?? 0) + n);
      const end = Date.now() + soakSeconds * 1000;
      const pause = (low: number, high: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, low + Math.random() * (high - low)));
      const flapping = (async () => {
        const modes: CollectorMode[] = ['up', 'up', 'up', '503', 'reset'];
        while (Date.now() < end) {
          s.collector.mode = modes[Math.floor(Math.random() * modes.length)]!;
          await pause(500, 3000);
        }
        s.collector.mode = 'up';
      })();
      const tabLoop = async (tab: Page): Promise<void> => {
        add(await sessionOf(tab), 1);
        while (Date.now() < end) {
          const roll = Math.random();
          if (roll < 0.04) {
            await tab.reload();
            await tab.waitForFunction(() => (window as unknown as W).__ready === true);
            add(await sessionOf(tab), 1);
          } else if (roll < 0.06) {
            await tab.goto(`${s.site}/other.html`);
            await load(tab, `${s.site}/track.html`);
            add(await sessionOf(tab), 1);
          } else {
            const n = 1 + Math.floor(Math.random() * 3);
            add(await track(tab, n), n);
          }
          await pause(100, 400);
        }
      };
      const tabs = [await s.open(), await s.open()];
      await Promise.all([flapping, ...tabs.map(tabLoop)]);
      // the collector is up again: what the pages still hold goes out, then they are left
      for (const tab of tabs) await tab.waitForFunction(() => (window as unknown as W).A.getQueueSize() === 0, undefined, { timeout: 30_000 }).catch(() => undefined);
      for (const tab of tabs) await tab.goto(`${s.site}/other.html`);
      // settled: no new event for 5 s (a page left while the collector was down keeps the rest)
      for (let last = -1, now = 0; now !== last; await pause(5000, 5000)) {
        last = now;
        now = total(storedPerSession(s.dataDir));
      }

      const report = deliveryReport(s.dataDir, started);
      const stored = storedPerSession(s.dataDir);
      const lost = total(created) - total(stored);
      console.log(
        JSON.stringify({
          soakSeconds,
          pageLoads: created.size,
          created: total(created),
          stored: total(stored),
          lost,
          trueRate: total(stored) / total(created),
          collector: s.collector.counts,
          report: { ...report, days: undefined },
        }),
      );
      // The report's received is what was stored; its gaps are created numbers that did not
      // arrive, never more than were lost (the rest went with a whole final send).
      expect(report.received).toBe(total(stored));
      expect(report.gaps).toBeLessThanOrEqual(lost);
      for (const run of report.days.flatMap((day) => day.gapRuns)) expect(run.last).toBeLessThanOrEqual(created.get(run.sessionId)!);
    },
    soakSeconds * 1000 + 180_000,
  );
});
