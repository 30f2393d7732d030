// Automatic page views: one ContentPageLoad per page and per SPA navigation, never twice in a row.
import { describe, expect, it, vi } from 'vitest';
import { fakeBrowser, load, sentIds, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';
const SITE = 'http://127.0.0.1:5173';
useFakeClock();

async function start(opts: { url?: string; hashRouting?: boolean; pageQuery?: boolean } = {}) {
  const b = fakeBrowser({ url: opts.url ?? `${SITE}/` });
  const m = await load();
  m.initializeAnalytics({ endpoint: URL_, autoPageViews: m.pageViews, hashRouting: opts.hashRouting, pageQuery: opts.pageQuery, batchSize: 500 });
  /** demoContentId of each page view sent so far. */
  const views = async (): Promise<unknown[]> => {
    await m.flush();
    return b.fetches.flatMap((f) => f.body.events.filter((e) => e.metricName === 'ContentPageLoad').map((e) => e.demoContentId));
  };
  return { b, m, views };
}

describe('autoPageViews: pageViews', () => {
  it('tracks the page at start, with demoContentId = the path and value null', async () => {
    const { b, views } = await start({ url: `${SITE}/home?x=1` });
    expect(await views()).toEqual(['/home']);
    expect(b.fetches[0].body.events[0]).toMatchObject({ metricName: 'ContentPageLoad', value: null, demoContentId: '/home', context: { pagePath: '/home' } });
  });

  it('pushState, replaceState to a new path and back/forward each track one page view', async () => {
    const { b, views } = await start();
    b.history.pushState({}, '', '/products');
    b.history.pushState({}, '', '/products/7');
    b.history.replaceState({}, '', '/products/7/reviews');
    b.popTo(`${SITE}/products`);
    b.popTo(`${SITE}/products/7/reviews`);
    expect(await views()).toEqual(['/', '/products', '/products/7', '/products/7/reviews', '/products', '/products/7/reviews']);
  });

  it('never twice in a row for the same path (push then replace, state-only changes, query changes)', async () => {
    const { b, views } = await start();
    b.history.pushState({}, '', '/a');
    b.history.replaceState({ scroll: 10 }, '', '/a'); // routers often do this right after a push
    b.history.replaceState({ scroll: 20 }, ''); // no URL: same page
    b.history.pushState({}, '', '/a?tab=2'); // the query is not part of the page by default
    b.history.pushState({}, '', '/a#section');
    b.popTo(`${SITE}/a`);
    expect(await views()).toEqual(['/', '/a']);
  });

  it('pageQuery: true – a new query string is a new page', async () => {
    const { b, views } = await start({ pageQuery: true });
    b.history.pushState({}, '', '/search?q=a');
    b.history.pushState({}, '', '/search?q=b');
    expect(await views()).toEqual(['/', '/search?q=a', '/search?q=b']);
  });

  it('hash changes count only with hashRouting: true', async () => {
    const plain = await start();
    plain.b.hashTo('#/settings');
    expect(await plain.views()).toEqual(['/']);
    const hashed = await start({ hashRouting: true });
    hashed.b.hashTo('#/settings');
    hashed.b.hashTo('#/settings');
    hashed.b.hashTo('#/profile');
    expect(await hashed.views()).toEqual(['/', '/#/settings', '/#/profile']);
  });

  it('hashRouting: the query inside the hash counts only with pageQuery: true', async () => {
    const plain = await start({ hashRouting: true });
    plain.b.hashTo('#/search?q=a');
    plain.b.hashTo('#/search?q=b');
    expect(await plain.views()).toEqual(['/', '/#/search']);
    const query = await start({ hashRouting: true, pageQuery: true });
    query.b.hashTo('#/search?q=a');
    query.b.hashTo('#/search?q=b');
    expect(await query.views()).toEqual(['/', '/#/search?q=a', '/#/search?q=b']);
  });

  it('works with a router that patched history before the client loaded, and with one that patches it after', async () => {
    const b = fakeBrowser({ url: `${SITE}/` });
    const routerBefore = vi.fn();
    const original = b.history.pushState;
    b.history.pushState = function (...args) {
      routerBefore(args[2]);
      original.apply(this, args);
    };
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, autoPageViews: m.pageViews });
    const ours = b.history.pushState;
    const routerAfter = vi.fn();
    b.history.pushState = function (...args) {
      ours.apply(this, args);
      routerAfter(args[2]);
    };
    b.history.pushState({}, '', '/one');
    b.history.pushState({}, '', '/two');
    await m.flush();
    expect(b.fetches[0].body.events.map((e) => e.demoContentId)).toEqual(['/', '/one', '/two']);
    expect(routerBefore.mock.calls).toEqual([['/one'], ['/two']]);
    expect(routerAfter.mock.calls).toEqual([['/one'], ['/two']]);
    expect(b.url.pathname).toBe('/two');
  });

  it('a path over 256 characters is cut for demoContentId (the server refuses longer ones)', async () => {
    const { views } = await start({ url: `${SITE}/${'p'.repeat(400)}` });
    expect(await views()).toEqual(['/' + 'p'.repeat(255)]);
  });

  it('initializeAnalytics again (e.g. a re-render) neither double-counts nor patches history twice', async () => {
    const { b, m, views } = await start();
    const patched = b.history.pushState;
    m.initializeAnalytics({ endpoint: URL_, autoPageViews: m.pageViews });
    expect(b.history.pushState).toBe(patched);
    b.history.pushState({}, '', '/x');
    expect(await views()).toEqual(['/', '/x']);
  });

  it('a pushState the browser refuses still throws to the host; no page view, and page views go on', async () => {
    const { b, views } = await start();
    expect(() => b.history.pushState({}, '', 'https://elsewhere.example/')).toThrow('cannot go to');
    b.history.pushState({}, '', '/ok');
    expect(await views()).toEqual(['/', '/ok']);
  });

  it('without autoPageViews, history is left alone and no page view is tracked', async () => {
    const b = fakeBrowser();
    const { pushState, replaceState } = b.history;
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    b.history.pushState({}, '', '/x');
    m.trackEvent('other');
    await m.flush();
    expect(b.history.pushState).toBe(pushState);
    expect(b.history.replaceState).toBe(replaceState);
    expect(b.fetches[0].body.events.map((e) => e.metricName)).toEqual(['other']);
  });

  it('pageViews() called directly without a browser (server-side rendering) does nothing and throws nothing', async () => {
    const m = await load();
    expect(() => m.pageViews()).not.toThrow();
  });

  it('page views follow consent: held while pending, sent once granted', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, autoPageViews: m.pageViews, consent: 'pending' });
    b.history.pushState({}, '', '/a');
    expect(b.fetches).toHaveLength(0);
    m.setConsent('granted');
    await m.flush();
    expect(b.fetches.flatMap((f) => f.body.events.map((e) => e.demoContentId))).toEqual(['/', '/a']);
  });
});

describe('autoPageViews: true (not the pageViews export)', () => {
  it('is reported to onError; everything else works', async () => {
    const b = fakeBrowser();
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, autoPageViews: true as unknown as typeof m.pageViews, onError });
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: expect.stringContaining('autoPageViews') }));
    m.trackEvent('a');
    await m.flush();
    expect(sentIds(b.fetches)).toHaveLength(1);
  });
});
