// `python -m exporter report` in Chromium: a generated day with hostile values in every field
// a chart shows becomes one offline page where every chart has its table, no request leaves
// the page, nothing logs an error, and the hostile text is shown, not run. A screenshot is
// saved under client/test-results/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_DIR, REPO_ROOT, launch, tempDir } from './helpers';

const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');
const SECTIONS = [
  'events-per-hour',
  'sessions-per-hour',
  'pages',
  'referrers',
  'utm-sources',
  'browsers',
  'os',
  'devices',
  'countries',
  'bots',
  'rejects',
  'delivery',
];
// Each would run script, load something or break out of its element if it were not escaped.
const HOSTILE = {
  pagePath: '/search?q=<script>window.__pwned=1</script>',
  referrer: 'https://evil.example/"><img src=https://evil.example/x.png onerror="window.__pwned=2">',
  utm_source: "</table></svg><script>window.__pwned=3</script>",
  metricName: '<svg onload="window.__pwned=4">$\\alpha$',
  uaBrowser: '<iframe src="https://evil.example/">',
  country: '<style>body{display:none}</style>',
  botReason: '<a href="javascript:window.__pwned=5">crawler</a>',
  reason: '<img src=x onerror="window.__pwned=6"> value must be a number',
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function line(record: Record<string, unknown>): string {
  return JSON.stringify(record) + '\n';
}

/** A day of 600 events over 24 hours, in 40 sessions; hostile values mixed in everywhere. */
function generateDay(dir: string): void {
  const pages = ['/', '/pricing', '/docs', '/blog', HOSTILE.pagePath];
  const browsers = ['Chrome', 'Firefox', 'Safari', HOSTILE.uaBrowser];
  const countries = ['DE', 'US', 'FR', HOSTILE.country, ''];
  const metrics = ['PageView', 'ContentElementInteraction', 'Search', HOSTILE.metricName];
  for (let hour = 0; hour < 24; hour++) {
    const hh = String(hour).padStart(2, '0');
    let body = '';
    for (let n = 0; n < 25; n++) {
      const i = hour * 25 + n;
      const session = i % 40;
      const bot = session === 7 || session === 13;
      body += line({
        eventId: `e-${i}`,
        sessionId: `s-${session}`,
        seq: Math.floor(i / 40) + 1 + (session === 3 && i > 300 ? 1 : 0), // session 3 loses one
        metricName: metrics[i % metrics.length],
        serverTimestamp: `2026-11-27T${hh}:${String(n * 2).padStart(2, '0')}:00.000Z`,
        pagePath: pages[i % pages.length],
        referrer: session % 4 === 0 ? HOSTILE.referrer : session % 4 === 1 ? 'https://www.google.com/' : '',
        utm_source: session % 5 === 0 ? HOSTILE.utm_source : session % 5 === 1 ? 'newsletter' : '',
        uaBrowser: bot ? 'Googlebot' : browsers[session % browsers.length],
        uaOs: ['Windows', 'iOS', 'Linux'][session % 3],
        uaDeviceType: bot ? 'bot' : ['desktop', 'mobile', 'tablet'][session % 3],
        country: countries[session % countries.length],
        isBot: bot,
        ...(bot ? { botReason: session === 7 ? HOSTILE.botReason : 'headless browser' } : {}),
      });
      if (n === 0) body += line({ eventId: `e-${i}`, sessionId: `s-${session}`, pagePath: '/retry' }); // a duplicate
    }
    mkdirSync(join(dir, 'raw/2026/11/27', hh), { recursive: true });
    writeFileSync(join(dir, 'raw/2026/11/27', hh, 'events.ndjson'), body);
    if (hour % 4 === 0) {
      mkdirSync(join(dir, 'rejected/2026/11/27', hh), { recursive: true });
      const reject = { receivedAt: `2026-11-27T${hh}:00:00.000Z`, requestId: 'r', index: 0, reason: HOSTILE.reason };
      writeFileSync(join(dir, 'rejected/2026/11/27', hh, 'rejects.ndjson'), line(reject) + line({ ...reject, reason: 'too big' }));
    }
  }
}

describe('the report page', () => {
  it('has every chart with its table, makes no request, logs no error and shows hostile text as text', async () => {
    const dir = tempDir('oa-report-');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    generateDay(dir);
    const out = join(dir, 'report.html');
    const said = execFileSync(PYTHON, ['-m', 'exporter', 'report', '--date', '2026-11-27', '--source', dir, '--out', out], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(said).toContain('600 event(s) in 40 session(s), 12 reject(s)');
    expect(said).toContain('24 duplicate(s) dropped');

    const b = await launch();
    cleanups.push(() => b.close());
    const tab = await b.context.newPage();
    const url = pathToFileURL(out).href;
    const requests: string[] = [];
    const problems: string[] = [];
    b.context.on('request', (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    tab.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await tab.goto(url, { waitUntil: 'load' });

    for (const id of SECTIONS) {
      const section = tab.locator(`section#${id}`);
      expect(await section.locator('figure svg').count(), `${id}: its chart`).toBe(1);
      expect(await section.locator('table tbody tr').count(), `${id}: its table`).toBeGreaterThan(0);
      expect(await section.locator('figure svg').boundingBox(), `${id}: drawn`).not.toBeNull();
    }
    expect(await tab.locator('figure svg').count()).toBe(SECTIONS.length);
    expect(await tab.textContent('#summary')).toContain('600');

    // Hostile values are on the page as text, in the tables and in the charts' labels ...
    const pages = await tab.textContent('#pages-table');
    expect(pages).toContain(HOSTILE.pagePath);
    expect(await tab.textContent('#referrers-table')).toContain(HOSTILE.referrer);
    expect(await tab.textContent('#utm-sources-table')).toContain(HOSTILE.utm_source);
    expect(await tab.textContent('#bots-table')).toContain(HOSTILE.botReason);
    expect(await tab.textContent('#rejects-table')).toContain(HOSTILE.reason);
    expect(await tab.textContent('#events-per-hour-chart')).toContain(HOSTILE.metricName);
    // ... and none became an element, ran or hid the page.
    const dom = await tab.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
      scripts: document.querySelectorAll('script, iframe, img, a, object, embed').length,
      visible: getComputedStyle(document.body).display,
    }));
    expect(dom).toEqual({ pwned: null, scripts: 0, visible: 'block' });

    const results = join(CLIENT_DIR, 'test-results');
    mkdirSync(results, { recursive: true });
    const shot = join(results, 'report.png');
    await tab.screenshot({ path: shot, fullPage: true });
    console.log(`report screenshot: ${shot}`);
    const pdf = await tab.pdf({ format: 'A4', printBackground: true }); // printable
    expect(pdf.length).toBeGreaterThan(20_000);

    expect(requests).toEqual([]);
    expect(problems).toEqual([]);
  }, 180_000); // the report's command and a PDF, on a busy 2-core machine
});
