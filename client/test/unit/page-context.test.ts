// Page context: pagePath per event, the session's landing fields per batch, webdriver.
import { describe, expect, it, vi } from 'vitest';
import { FakeStorage, fakeBrowser, load, pagehide, stored, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';
const SITE = 'http://127.0.0.1:5173';
useFakeClock();

async function sent(b: ReturnType<typeof fakeBrowser>, m: Awaited<ReturnType<typeof load>>) {
  await m.flush();
  return b.fetches.at(-1)!.body;
}

describe('pagePath', () => {
  it('each event carries the path of the page it was tracked on, without the query string', async () => {
    const b = fakeBrowser({ url: `${SITE}/products?id=7#top` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    b.history.pushState(null, '', '/cart?coupon=x');
    m.trackEvent('b');
    const body = await sent(b, m);
    expect(body.events.map((e) => e.context)).toEqual([{ pagePath: '/products' }, { pagePath: '/cart' }]);
  });

  it('pageQuery: true keeps the query string; hashRouting: true the hash', async () => {
    const b = fakeBrowser({ url: `${SITE}/products?id=7#/detail` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, pageQuery: true });
    m.trackEvent('a');
    m.initializeAnalytics({ endpoint: URL_, hashRouting: true });
    m.trackEvent('b');
    const body = await sent(b, m);
    expect(body.events.map((e) => e.context)).toEqual([{ pagePath: '/products?id=7' }, { pagePath: '/products#/detail' }]);
  });

  it("hashRouting: a query inside the hash (#/search?q=…) is left out too, unless pageQuery: true", async () => {
    const b = fakeBrowser({ url: `${SITE}/app?tab=2#/search?q=shoes` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, hashRouting: true });
    m.trackEvent('a');
    m.initializeAnalytics({ endpoint: URL_, hashRouting: true, pageQuery: true });
    m.trackEvent('b');
    const body = await sent(b, m);
    expect(body.events.map((e) => e.context)).toEqual([{ pagePath: '/app#/search' }, { pagePath: '/app?tab=2#/search?q=shoes' }]);
  });

  it('a very long path is cut to 1024 characters, so the server still stores the event', async () => {
    const b = fakeBrowser({ url: `${SITE}/${'x'.repeat(5000)}` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    const body = await sent(b, m);
    expect((body.events[0].context as { pagePath: string }).pagePath).toBe('/' + 'x'.repeat(1023));
  });

  it("a pagePath in the host's context wins: events then carry none of their own", async () => {
    const b = fakeBrowser({ url: `${SITE}/products` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, context: { pagePath: 'kiosk-home' } });
    m.trackEvent('a');
    const body = await sent(b, m);
    expect(body.events[0]).not.toHaveProperty('context');
    expect(body.context).toEqual({ pagePath: 'kiosk-home' });
  });
});

describe('landing fields (batch context)', () => {
  const LANDING = `${SITE}/promo?utm_source=news&utm_medium=email&utm_campaign=spring&utm_term=shoes&utm_content=top&gclid=G1&fbclid=F1&other=x&referrer=forged`;

  it('the landing URL’s campaign fields and another site’s referrer (origin + path) go with every batch', async () => {
    const b = fakeBrowser({ url: LANDING, referrer: 'https://search.example/results?q=secret#frag' });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, context: { device: 'd1' } });
    m.trackEvent('a');
    const expected = {
      referrer: 'https://search.example/results',
      utm_source: 'news',
      utm_medium: 'email',
      utm_campaign: 'spring',
      utm_term: 'shoes',
      utm_content: 'top',
      gclid: 'G1',
      fbclid: 'F1',
      device: 'd1',
    };
    expect((await sent(b, m)).context).toEqual(expected);
    b.history.pushState(null, '', '/next');
    m.trackEvent('b');
    expect((await sent(b, m)).context).toEqual(expected);
  });

  it('a later page load of the session (same sessionStorage) still sends them', async () => {
    const session = new FakeStorage();
    fakeBrowser({ session, url: `${SITE}/?utm_source=news&gclid=G1`, referrer: 'https://ads.example/click' });
    let m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    const b = fakeBrowser({ session, url: `${SITE}/checkout?utm_source=internal`, referrer: `${SITE}/` });
    m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual({ referrer: 'https://ads.example/click', utm_source: 'news', gclid: 'G1' });
  });

  it('a referrer of this site is not where the session came from; no referrer, no campaign: nothing added', async () => {
    const b = fakeBrowser({ url: `${SITE}/a?referrer=https://forged.example/`, referrer: `${SITE}/b?x=1` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual({});
  });

  it('a tampered sessionStorage entry yields only known keys, as strings', async () => {
    const session = new FakeStorage();
    session.setItem('owned-analytics:landing', 'utm_source=ok&evil=1&eventId=x&webdriver=false');
    const b = fakeBrowser({ session, url: `${SITE}/?utm_source=ignored` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual({ utm_source: 'ok' });
  });

  it('a value over 1024 characters is left out (cutting could split a character)', async () => {
    const b = fakeBrowser({ url: `${SITE}/?utm_source=${'é'.repeat(1025)}&utm_medium=ok` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual({ utm_medium: 'ok' });
  });

  it("the host's context keys win over the automatic ones", async () => {
    const b = fakeBrowser({ url: `${SITE}/?utm_source=news&utm_medium=email` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, context: { utm_source: 'app-store' } });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual({ utm_source: 'app-store', utm_medium: 'email' });
  });

  it('automatic fields never take a batch over the server’s 32 context keys', async () => {
    const context = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
    const b = fakeBrowser({ url: `${SITE}/?utm_source=news&utm_medium=email&gclid=G` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, context });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual(context);
  });

  it('pageContext: false – no pagePath, no landing fields, nothing in sessionStorage', async () => {
    const session = new FakeStorage();
    const b = fakeBrowser({ session, url: `${SITE}/p?utm_source=news`, referrer: 'https://other.example/' });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, pageContext: false, context: { device: 'd' } });
    m.trackEvent('a');
    const body = await sent(b, m);
    expect(body.context).toEqual({ device: 'd' });
    expect(body.events[0]).not.toHaveProperty('context');
    expect(Object.keys(session)).toEqual([]);
  });

  it('works without sessionStorage (disabled): this page counts as the landing page', async () => {
    const b = fakeBrowser({ session: 'throw', url: `${SITE}/?utm_source=news` });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    const body = await sent(b, m);
    expect(body.context).toEqual({ utm_source: 'news' });
    expect(body.events).toHaveLength(1);
  });
});

describe('webdriver', () => {
  it.each([
    [true, { webdriver: true }],
    [false, {}],
  ])('navigator.webdriver %s → batch context %j', async (webdriver, context) => {
    const b = fakeBrowser({ webdriver });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual(context);
  });

  it('is sent with pageContext: false too (it marks bots, not pages)', async () => {
    const b = fakeBrowser({ webdriver: true });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, pageContext: false });
    m.trackEvent('a');
    expect((await sent(b, m)).context).toEqual({ webdriver: true });
  });
});

describe("the host's context", () => {
  it.each([
    ['a BigInt', () => ({ n: 1n as unknown as number })],
    [
      'a cycle',
      () => {
        const context: Record<string, unknown> = {};
        context.self = context;
        return context as Record<string, null>;
      },
    ],
  ])('%s: reported once, by initializeAnalytics; the client stays off and what it queued before is still handed over at exit', async (_name, context) => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    b.fallback = () => 'network-error';
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, onError, retryBaseDelay: 1e6 });
    m.trackEvent('before');
    await m.flush(); // fails: kept
    onError.mockClear();
    b.fallback = (s) => ({ status: 200, body: { accepted: s.body.events.length, rejected: [] } });
    m.initializeAnalytics({ endpoint: URL_, onError, context: context() });
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0][0]).toBeInstanceOf(TypeError);
    expect(() => m.trackEvent('after')).not.toThrow();
    await m.flush();
    await vi.advanceTimersByTimeAsync(2e6);
    pagehide(b);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(b.fetches).toHaveLength(1); // the failed one, before
    expect(b.beacons).toHaveLength(0);
    expect(stored(storage).map((s) => [s.t, s.e.map((e) => e.metricName)])).toEqual([[0, ['before']]]);
  });
});
