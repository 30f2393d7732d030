// Firefox ESR with uBlock Origin and only its packaged default lists: the page-exit case end to
// end (20 events, the visitor leaves after 1 s and comes back: all 20 stored, none twice in the
// CSV), and the table of docs/INTEGRATION.md ("A first-party endpoint") measured: for each
// setup, how many of 20 events arrive by batches (batchSize 5) and at page exit (defaults, the
// visitor leaves after 1 s and does not come back).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, rawRecords, REPO_ROOT, startApi, tempDir, type Api } from './helpers';
import { API_GATEWAY, ELSEWHERE, SITE, SUBDOMAIN, launchFirefox, serveSite, waitForBlocker } from './firefox';

const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');

/** A page of the site: the built client (IIFE, or the ESM build as an app bundles it), configured from its query. */
function page(kind: 'iife' | 'esm'): string {
  const setup = `
    const q = new URLSearchParams(location.search);
    A.initializeAnalytics({ endpoint: q.get('endpoint'), storageKey: q.get('key'), batchSize: +q.get('batch') || undefined });
    window.__session = A.getSessionId();
    for (let i = 0; i < +(q.get('track') || 0); i++) A.trackEvent('ContentElementInteraction', i, 'button-' + i);
    window.__ready = true;`;
  return kind === 'esm'
    ? `<!doctype html><title>t</title><script type="module">import * as A from '/dist/index.js';${setup}</script>`
    : `<!doctype html><title>t</title><script src="/dist/owned-analytics.iife.js"></script><script>const A = window.OwnedAnalytics;${setup}</script>`;
}

let api: Api;
let dataDir: string;
let site: Awaited<ReturnType<typeof serveSite>>;
let browser: Browser;
let tab: Page;

beforeAll(async () => {
  dataDir = tempDir('oa-firefox-');
  api = await startApi(await freePort(), dataDir);
  site = await serveSite({ '/probe': '<!doctype html><title>probe</title>', '/': page('iife'), '/app': page('esm') }, api.port);
  browser = await launchFirefox();
  await waitForBlocker(browser, site.port, site.posts);
  tab = await browser.newPage();
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await site?.close();
  await api?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Distinct events stored for a session, and how many records carry them. */
function storedFor(session: string): { events: number; records: number } {
  const records = rawRecords(dataDir).filter((record) => record.sessionId === session);
  return { events: new Set(records.map((record) => record.eventId)).size, records: records.length };
}

/** Waits until the count of a session's stored events stops changing (2 s without change, 8 s at most). */
async function settledCount(session: string): Promise<number> {
  let last = -1;
  let since = Date.now();
  const deadline = Date.now() + 8_000;
  for (;;) {
    const now = storedFor(session).events;
    if (now !== last) [last, since] = [now, Date.now()];
    if (Date.now() - since > 2_000 || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Opens the site's page tracking 20 events; returns its session id. */
async function open(path: string, endpoint: string, key: string, batch?: number): Promise<string> {
  const query = new URLSearchParams({ endpoint, key, track: '20', ...(batch ? { batch: String(batch) } : {}) });
  await tab.goto(`http://${SITE}:${site.port}${path}?${query}`);
  await tab.waitForFunction(() => (window as { __ready?: boolean }).__ready === true);
  return tab.evaluate(() => (window as unknown as { __session: string }).__session);
}

/** The visitor goes to another site. */
const leave = (): Promise<unknown> => tab.goto(`http://${ELSEWHERE}:${site.port}/probe`);

let keys = 0;

describe('Firefox ESR with uBlock Origin (default lists)', () => {
  it('page exit: 20 events, the visitor leaves after 1 s and comes back: all 20 stored, none twice in the CSV', async () => {
    const endpoint = `http://${API_GATEWAY}:${site.port}/api/events`; // another site: beacons to it are blocked
    const key = `exit-${keys++}`;
    const session = await open('/', endpoint, key);
    await new Promise((r) => setTimeout(r, 1000));
    await leave();
    await tab.goto(`http://${SITE}:${site.port}/?${new URLSearchParams({ endpoint, key })}`); // comes back, tracks nothing
    const deadline = Date.now() + 20_000;
    while (storedFor(session).events < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(storedFor(session).events).toBe(20);
    await new Promise((r) => setTimeout(r, 1000)); // any copy the return visit sends again has landed
    const day = new Date().toISOString().slice(0, 10);
    const csv = join(dataDir, 'exit.csv');
    execFileSync(PYTHON, ['-m', 'exporter', 'export', '--date', day, '--source', dataDir, '--out', csv], { cwd: REPO_ROOT, stdio: 'pipe' });
    const rows = execFileSync(
      PYTHON,
      ['-c', 'import csv, json, sys; print(json.dumps([[r["sessionId"], r["eventId"], r.get("seq")] for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))]))', csv],
      { encoding: 'utf8' },
    );
    const ours = (JSON.parse(rows) as string[][]).filter(([sessionId]) => sessionId === session);
    expect(ours).toHaveLength(20);
    expect(new Set(ours.map(([, eventId]) => eventId)).size).toBe(20);
    expect(ours.map(([, , seq]) => Number(seq)).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  }, 120_000);

  it('the table: every setup the docs recommend gets 20/20 by batches and at page exit; /analytics/… stays blocked', async () => {
    const setups: [string, string, string][] = [
      ['endpoint on the API Gateway host', '/', `http://${API_GATEWAY}:${site.port}/api/events`],
      ['first-party /api/events', '/', `http://${SITE}:${site.port}/api/events`],
      ['first-party /analytics/events', '/', `http://${SITE}:${site.port}/analytics/events`],
      ['first-party /events (the docs’ default)', '/', `http://${SITE}:${site.port}/events`],
      ['first-party /collect', '/', `http://${SITE}:${site.port}/collect`],
      ['first-party /e', '/', `http://${SITE}:${site.port}/e`],
      ['first-party /api/v1/ingest', '/', `http://${SITE}:${site.port}/api/v1/ingest`],
      ['API Gateway custom domain on a subdomain', '/', `http://${SUBDOMAIN}:${site.port}/events`],
      ['the ESM build bundled into the app, API Gateway endpoint', '/app', `http://${API_GATEWAY}:${site.port}/api/events`],
    ];
    const table: string[] = [];
    const results: Record<string, [number, number]> = {};
    for (const [name, path, endpoint] of setups) {
      const batched = await open(path, endpoint, `batches-${keys++}`, 5);
      const byBatches = await settledCount(batched);
      await leave();
      const exiting = await open(path, endpoint, `exit-${keys++}`);
      await new Promise((r) => setTimeout(r, 1000));
      await leave();
      const atExit = await settledCount(exiting);
      results[name] = [byBatches, atExit];
      table.push(`| ${name} | ${byBatches}/20 | ${atExit}/20 |`);
    }
    console.log(['| setup | batches by fetch (batchSize 5) | default settings, visitor leaves after 1 s |', '|---|---|---|', ...table].join('\n'));
    for (const [name, counts] of Object.entries(results)) {
      expect(counts, name).toEqual(name.includes('/analytics/') ? [0, 0] : [20, 20]);
    }
  }, 300_000);
});
