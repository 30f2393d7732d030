// The example of docs/INTEGRATION.md ("Assert your tracking in your own end-to-end tests"),
// run as written against chalice local: tests/test_docs.py checks that the lines between
// `docs:start` and `docs:end` are the ones the docs show. `page` and `request` are what
// @playwright/test gives a test: a Page and an APIRequestContext (here from playwright-core).
import { rmSync } from 'node:fs';
import { request as playwrightRequest, type APIRequestContext, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, launch, servePages, startApi, tempDir } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** The app under test: a subscribe button, tracked; batchSize 1 as the docs advise for tests. */
const APP = `<!doctype html><title>app</title>
<button id="subscribe">Subscribe</button>
<script src="/dist/owned-analytics.iife.js"></script>
<script>
  OwnedAnalytics.initializeAnalytics({
    endpoint: new URLSearchParams(location.search).get('api'), batchSize: 1,
    context: { device: 'web', language: 'en_us', appVersion: '1.0.0' },
  });
  document.querySelector('#subscribe').addEventListener('click', () =>
    OwnedAnalytics.trackEvent('ContentElementInteraction', undefined, 'ButtonClicked-subscribe',
      { action: 'click', button: 'subscribe' }));
</script>`;

async function example({ page, request }: { page: Page; request: APIRequestContext }): Promise<void> {
  // docs:start
  const api = process.env.ANALYTICS_API ?? 'http://127.0.0.1:8000'; // make dev's API
  await request.delete(`${api}/_dev/events`); // start clean: no events, no rejections

  await page.goto(process.env.APP_URL ?? 'http://127.0.0.1:5173/'); // your app, sending to api
  await page.click('#subscribe');

  const url = `${api}/_dev/events?metricName=ContentElementInteraction`;
  const stored = async () => (await (await request.get(url)).json()).events;
  await expect.poll(async () => (await stored()).length, { timeout: 10_000 }).toBe(1);
  const [event] = await stored();
  expect(event).toMatchObject({
    demoContentId: 'ButtonClicked-subscribe',
    metricAttributes: { action: 'click', button: 'subscribe' },
    device: 'web', // the app's context, merged by the server
  });
  expect(event.serverTimestamp).toMatch(/Z$/);
  expect((await (await request.get(`${api}/_dev/rejected`)).json()).rejected).toEqual([]);
  // docs:end
}

describe('asserting tracking with the dev inspector (docs/INTEGRATION.md)', () => {
  it('the example passes against chalice local', async () => {
    const dataDir = tempDir('oa-inspector-');
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const api = await startApi(await freePort(), dataDir);
    cleanups.push(() => api.stop());
    const site = await servePages({ '/': APP });
    cleanups.push(() => site.close());
    const b = await launch();
    cleanups.push(() => b.close());
    const request = await playwrightRequest.newContext();
    cleanups.push(() => request.dispose());
    const page = await b.context.newPage();
    process.env.ANALYTICS_API = api.url;
    process.env.APP_URL = `${site.url}/?api=${encodeURIComponent(`${api.url}/events`)}`;
    cleanups.push(() => {
      delete process.env.ANALYTICS_API;
      delete process.env.APP_URL;
    });
    // Something left from before the test, which its DELETE must clear.
    await fetch(`${api.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
    await example({ page, request });
  });
});
