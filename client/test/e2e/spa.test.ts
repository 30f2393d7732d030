// A small single-page app in real Chromium against chalice local: page context, page views,
// the session's landing fields, and consent.
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, launch, rawRecords, servePages, startApi, tempDir, waitFor, type Api } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Client = typeof import('../../src/index');
type W = { A: Client; __ready?: boolean; __sends: Array<{ transport: string; status?: number; events: number }>; navigate(path: string): void };

/**
 * The SPA: a router that patches history.pushState before the client loads (as some routers
 * do), links that navigate with pushState, and the client with automatic page views.
 */
function spa(endpoint: string, options: string): string {
  return `<!doctype html><title>spa</title>
<nav><a href="/app/" data-link>home</a> <a href="/app/products" data-link>products</a> <a href="/app/products/7?ref=list" data-link>product 7</a></nav>
<main id="view"></main>
<script>
  // the router: patched before the analytics client is loaded
  const push = history.pushState;
  history.pushState = function (state, unused, url) { push.call(this, state, unused, url); render(); };
  window.addEventListener('popstate', () => render());
  function render() { document.getElementById('view').textContent = 'page ' + location.pathname; }
  window.navigate = (path) => history.pushState({}, '', path);
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[data-link]');
    if (a) { e.preventDefault(); navigate(a.getAttribute('href')); }
  });
  render();
</script>
<script type="module">
  import * as A from '/dist/index.js';
  window.__sends = [];
  A.initializeAnalytics({ endpoint: ${JSON.stringify(endpoint)}, context: { device: 'e2e-spa' }, autoPageViews: A.pageViews,
    onSend: (r) => window.__sends.push(r), ${options} });
  window.A = A;
  window.__ready = true;
</script>`;
}

describe('single-page app against chalice local', () => {
  it('pagePath per event, one page view per navigation (back button included), the session’s UTM fields and referrer on every stored event', async () => {
    const dataDir = tempDir('oa-data-');
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const api: Api = await startApi(await freePort(), dataDir);
    cleanups.push(() => api.stop());
    const endpoint = `${api.url}/events`;
    const site = await servePages({
      '/app/': spa(endpoint, 'batchSize: 100, batchTimeout: 600000'),
      // a later page of the same tab's session, reached by a full page load, without UTM fields
      '/app/next.html': `<!doctype html><title>next</title><script type="module">
        import * as A from '/dist/index.js';
        A.initializeAnalytics({ endpoint: ${JSON.stringify(endpoint)}, context: { device: 'e2e-spa' } });
        A.trackEvent('SecondPageEvent', 1);
        window.A = A; window.__ready = true;</script>`,
      '/bye.html': '<!doctype html><title>bye</title>',
    });
    cleanups.push(() => site.close());
    // another site links to the landing URL; its full URL is the referrer (unsafe-url policy)
    const landing = `${site.url}/app/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&gclid=G-123&other=ignored`;
    const other = await servePages({
      '/blog/post.html': `<!doctype html><meta name="referrer" content="unsafe-url"><title>blog</title><a id="go" href="${landing}">shop</a>`,
    });
    cleanups.push(() => other.close());
    const b = await launch();
    cleanups.push(() => b.close());
    const tab = await b.context.newPage();

    await tab.goto(`${other.url}/blog/post.html?secret=1`);
    await Promise.all([tab.waitForURL(/\/app\/\?utm_source/), tab.click('#go')]);
    await tab.waitForFunction(() => (window as unknown as W).__ready === true);
    const sid = await tab.evaluate(() => (window as unknown as W).A.getSessionId());
    const webdriver = await tab.evaluate(() => navigator.webdriver === true);
    const track = (name: string) => tab.evaluate((n) => (window as unknown as W).A.trackEvent(n), name);

    await track('HomeEvent');
    await tab.click('text=products');
    await tab.waitForURL(/\/app\/products$/);
    await track('ProductsEvent');
    await tab.evaluate(() => history.replaceState({ scroll: 1 }, '', '/app/products')); // same path: no page view
    await tab.click('text=product 7');
    await tab.waitForURL(/\/app\/products\/7/);
    await track('ProductEvent');
    await tab.goBack(); // popstate
    await tab.waitForURL(/\/app\/products$/);
    await track('BackEvent');
    await tab.goto(`${site.url}/app/next.html`); // page exit: a keepalive fetch; then a new page load
    await tab.waitForFunction(() => (window as unknown as W).__ready === true);
    const sid2 = await tab.evaluate(() => (window as unknown as W).A.getSessionId());
    await tab.goto(`${site.url}/bye.html`);

    // one record per event, each event's first copy: the page exit's request and the next page
    // load (which adopts the handed-over queue before that request's answer could reach the old
    // page) both send the first page's events: at least once (the CSV keeps one row each)
    const distinct = (): Array<Record<string, unknown>> => [...new Map(rawRecords(dataDir).map((r) => [r.eventId, r] as const)).values()];
    const records = await waitFor('9 events in raw/', () => {
      const r = distinct();
      return r.length >= 9 && r;
    });
    await new Promise((r) => setTimeout(r, 500)); // a late extra event would show up here
    expect(distinct()).toHaveLength(9);
    for (const r of rawRecords(dataDir)) if (records.filter((x) => x.eventId === r.eventId).length > 1 || r.sessionId !== sid) expect(r.sessionId === sid || r.sessionId === sid2).toBe(true);
    const first = records.filter((r) => r.sessionId === sid).sort((x, y) => Number(x.timestamp) - Number(y.timestamp));
    expect(first.map((r) => [r.metricName, r.demoContentId ?? null, r.pagePath])).toEqual([
      ['ContentPageLoad', '/app/', '/app/'],
      ['HomeEvent', null, '/app/'],
      ['ContentPageLoad', '/app/products', '/app/products'],
      ['ProductsEvent', null, '/app/products'],
      ['ContentPageLoad', '/app/products/7', '/app/products/7'],
      ['ProductEvent', null, '/app/products/7'],
      ['ContentPageLoad', '/app/products', '/app/products'],
      ['BackEvent', null, '/app/products'],
    ]);
    const second = records.filter((r) => r.sessionId === sid2);
    expect(second.map((r) => [r.metricName, r.pagePath])).toEqual([['SecondPageEvent', '/app/next.html']]);
    // every stored event of the tab's session says where the session came from
    for (const r of [...first, ...second]) {
      expect(r).toMatchObject({
        device: 'e2e-spa',
        utm_source: 'newsletter',
        utm_medium: 'email',
        utm_campaign: 'spring',
        gclid: 'G-123',
        referrer: `${other.url}/blog/post.html`,
      });
      expect(r).not.toHaveProperty('other');
      expect(r).not.toHaveProperty('utm_term');
      // the server may turn `webdriver` into its own bot flag
      expect(r.webdriver === true || r.isBot === true).toBe(webdriver);
    }
  });

  it("consent 'pending': nothing reaches the server and nothing is stored; granting delivers the held events exactly once", async () => {
    const dataDir = tempDir('oa-data-');
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const api: Api = await startApi(await freePort(), dataDir);
    cleanups.push(() => api.stop());
    const site = await servePages({
      '/app/': spa(`${api.url}/events`, "consent: 'pending', batchSize: 2, batchTimeout: 200"),
      '/bye.html': '<!doctype html><title>bye</title>',
    });
    cleanups.push(() => site.close());
    const b = await launch();
    cleanups.push(() => b.close());
    const posts: string[] = [];
    b.context.on('request', (r) => {
      if (r.url().endsWith('/events')) posts.push(r.url());
    });
    const tab = await b.context.newPage();
    await tab.goto(`${site.url}/app/?utm_source=banner-test`);
    await tab.waitForFunction(() => (window as unknown as W).__ready === true);
    await tab.evaluate(() => {
      const w = window as unknown as W;
      for (let i = 0; i < 5; i++) w.A.trackEvent('Held', i);
      w.navigate('/app/products');
    });
    await new Promise((r) => setTimeout(r, 1500)); // batch timeout and storage writes would have happened
    expect(posts).toEqual([]);
    const storage = await tab.evaluate(() => [Object.keys(localStorage), Object.keys(sessionStorage)]);
    expect(storage).toEqual([[], []]);
    expect(await tab.evaluate(() => (window as unknown as W).A.getQueueSize())).toBe(7); // 5 events, 2 page views

    await tab.evaluate(() => (window as unknown as W).A.setConsent('granted'));
    await waitFor('7 records in raw/', () => rawRecords(dataDir).length >= 7 && true);
    await tab.goto(`${site.url}/bye.html`); // page exit: nothing left to send twice
    await new Promise((r) => setTimeout(r, 1000));
    const records = rawRecords(dataDir);
    expect(records).toHaveLength(7);
    expect(new Set(records.map((r) => r.eventId)).size).toBe(7);
    expect(records.filter((r) => r.metricName === 'Held').map((r) => r.value).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(records.filter((r) => r.metricName === 'ContentPageLoad').map((r) => r.pagePath).sort()).toEqual(['/app/', '/app/products']);
    for (const r of records) expect(r.utm_source).toBe('banner-test');
  });
});
