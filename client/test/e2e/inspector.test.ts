// The example of docs/INTEGRATION.md ("Assert your tracking in your own end-to-end tests"),
// run as written against chalice local: tests/test_docs.py checks that the lines between
// `docs:start` and `docs:end` are the ones the docs show. `page` and `request` are what
// @playwright/test gives a test: a Page and an APIRequestContext (here from playwright-core).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { request as playwrightRequest, type APIRequestContext, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_DIR, REPO_ROOT, freePort, launch, servePages, startApi, tempDir } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/**
 * The app under test is docs/INTEGRATION.md's section 2a, as written: its `src/main.ts`
 * bundled with esbuild (the package name pointing at this client's source, `import.meta.env`
 * holding what the app's `.env` would, with batchSize 1 as the docs advise for tests) and a
 * page with the `#subscribe` button it tracks. So the guide's examples are tested as one app.
 */
async function viteExampleApp(endpoint: string): Promise<string> {
  const guide = readFileSync(join(REPO_ROOT, 'docs', 'INTEGRATION.md'), 'utf8');
  const after = guide.split('<!-- vite-example')[1];
  const mainTs = /```ts\n([\s\S]*?)```/.exec(after ?? '')?.[1];
  if (!mainTs) throw new Error('docs/INTEGRATION.md has no vite-example block');
  const env = {
    VITE_ANALYTICS_ENDPOINT: endpoint,
    VITE_ENABLE_CSV_ANALYTICS: 'true',
    VITE_ANALYTICS_BATCH_SIZE: '1',
  };
  const bundled = await build({
    stdin: { contents: mainTs, loader: 'ts', resolveDir: CLIENT_DIR },
    bundle: true,
    write: false,
    format: 'iife',
    alias: { 'owned-analytics-client': join(CLIENT_DIR, 'src', 'index.ts') },
    define: { 'import.meta.env': JSON.stringify(env) },
  });
  const script = bundled.outputFiles[0].text.replaceAll('</script', '<\\/script');
  return `<!doctype html><title>app</title>
<button id="subscribe">Subscribe</button>
<script>${script}</script>`;
}

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
    const site = await servePages({ '/': await viteExampleApp(`${api.url}/events`) });
    cleanups.push(() => site.close());
    const b = await launch();
    cleanups.push(() => b.close());
    const request = await playwrightRequest.newContext();
    cleanups.push(() => request.dispose());
    const page = await b.context.newPage();
    process.env.ANALYTICS_API = api.url;
    process.env.APP_URL = `${site.url}/`;
    cleanups.push(() => {
      delete process.env.ANALYTICS_API;
      delete process.env.APP_URL;
    });
    // Something left from before the test, which its DELETE must clear.
    await fetch(`${api.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
    await example({ page, request });
  });
});
