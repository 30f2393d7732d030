// Firefox ESR (Debian's firefox-esr) driven over WebDriver BiDi by puppeteer-core, with Debian's
// uBlock Origin (webext-ublock-origin-firefox) enabled through profile prefs: the system
// extension scope is on and not auto-disabled. Host names resolve to 127.0.0.1 inside the
// browser (network.dns.localDomains), so a page on site.test and an endpoint on an
// execute-api.…amazonaws.com host are two sites to the blocker, as in production.
import { request as httpRequest, createServer, type Server } from 'node:http';
import puppeteer, { type Browser } from 'puppeteer-core';
import { answerPageOrDist, freePort } from './helpers';
import { existsSync } from 'node:fs';

const FIREFOX = process.env.FIREFOX_PATH || '/usr/bin/firefox-esr';

export const SITE = 'site.test';
export const ELSEWHERE = 'elsewhere.test';
export const API_GATEWAY = 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com';
/** An API Gateway custom domain on a subdomain of the site. */
export const SUBDOMAIN = 'events.site.test';

export async function launchFirefox(): Promise<Browser> {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} not found: apt-get install firefox-esr`);
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: {
      // the system-wide extensions (/usr/share/mozilla/extensions: uBlock Origin) on, as Debian users have them
      'extensions.enabledScopes': 15,
      'extensions.autoDisableScopes': 0,
      'network.dns.localDomains': [SITE, SUBDOMAIN, ELSEWHERE, API_GATEWAY].join(','),
      'dom.security.https_first': false,
      'dom.security.https_first_pbm': false,
      'network.proxy.type': 0,
    },
  });
}

/**
 * One server for every host name: the test pages (`pages`, by path), client/dist/ under
 * /dist/, and every POST forwarded to the API's `POST /events` (a reverse proxy, as nginx or a
 * CloudFront behavior would be), whatever its path. `posts` lists the paths that reached it.
 */
export async function serveSite(pages: Record<string, string>, apiPort: number): Promise<{ port: number; posts: string[]; close(): Promise<void> }> {
  const posts: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'POST' || req.method === 'OPTIONS') {
      posts.push(`${req.headers.host} ${path}`);
      const upstream = httpRequest(
        { host: '127.0.0.1', port: apiPort, path: '/events', method: req.method, headers: { ...req.headers, host: `127.0.0.1:${apiPort}` } },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
      return;
    }
    if (!answerPageOrDist(pages, path, res)) res.writeHead(404).end('not found');
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    posts,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * Waits until uBlock Origin blocks: it loads its lists on first start, and until then a request
 * its lists name goes through. Probes with a POST to a path EasyPrivacy blocks.
 */
export async function waitForBlocker(browser: Browser, port: number, posts: string[]): Promise<void> {
  const page = await browser.newPage();
  const deadline = Date.now() + 90_000;
  try {
    for (;;) {
      const before = posts.length;
      await page.goto(`http://${SITE}:${port}/probe`);
      await page.evaluate(() => fetch('/analytics/event', { method: 'POST', body: 'probe' }).catch(() => undefined));
      await new Promise((r) => setTimeout(r, 500));
      if (!posts.slice(before).some((post) => post.endsWith('/analytics/event'))) return;
      if (Date.now() > deadline) throw new Error('uBlock Origin did not start blocking within 90 s: is webext-ublock-origin-firefox installed?');
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await page.close();
  }
}
