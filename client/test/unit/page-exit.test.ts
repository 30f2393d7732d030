// Page exit: the queue leaves by `fetch` with `keepalive` (sendBeacon only where fetch has no
// keepalive), and only an answer takes events out of the queue and storage: a page that ends
// first, or a request a content blocker cancels, leaves them to the next page load.
import { describe, expect, it, vi } from 'vitest';
import { FakeStorage, deliveredIds, exits, fakeBrowser, hide, load, pagehide, pageshow, sentIds, settle, stored, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';

useFakeClock();

describe('page exit', () => {
  it('visibilitychange to hidden sends the queue with fetch keepalive as a text/plain string, once', async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, context: { appVersion: '1.0.0' } });
    m.trackEvent('a');
    m.trackEvent('b');
    hide(b);
    expect(exits(b)).toHaveLength(1);
    const [exit] = exits(b);
    expect(exit.url).toBe(URL_);
    expect(typeof exit.init.body).toBe('string'); // text/plain: no CORS preflight
    expect(exit.init.headers).toBeUndefined();
    expect(exit.init.credentials).toBe('omit');
    expect(exit.body.context).toEqual({ appVersion: '1.0.0' });
    expect(exit.body.events.map((e) => e.metricName)).toEqual(['a', 'b']);
    // not answered yet: still queued, and stored at once in case the page goes first
    expect(m.getQueueSize()).toBe(2);
    expect(stored(storage)[0].e.map((e) => e.metricName)).toEqual(['a', 'b']);
    expect(b.nav.sendBeacon).not.toHaveBeenCalled();
    pagehide(b); // nothing new to send: the two are in flight
    expect(b.fetches).toHaveLength(1);
    await settle();
    expect(m.getQueueSize()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.fetches).toHaveLength(1);
    expect(stored(storage)).toEqual([]);
  });

  it('splits the exit requests to stay under 64 KiB each, no event lost or repeated', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, batchSize: 500, maxQueueBytes: 5e6 });
    for (let i = 0; i < 300; i++) m.trackEvent('x', i, undefined, { pad: 'é'.repeat(500), i });
    pagehide(b);
    expect(exits(b).length).toBeGreaterThan(4);
    for (const s of exits(b)) expect(new TextEncoder().encode(s.raw).length).toBeLessThanOrEqual(64_000);
    const ids = sentIds(exits(b));
    expect(ids).toHaveLength(300);
    expect(new Set(ids).size).toBe(300);
  });

  it('the page goes before the answer: its events stay stored, and the next page load sends them (at least once)', async () => {
    const storage = new FakeStorage();
    let b = fakeBrowser({ storage });
    b.hang = true; // the answer never reaches the page
    let m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    for (let i = 0; i < 20; i++) m.trackEvent('x', i);
    await vi.advanceTimersByTimeAsync(1000);
    hide(b);
    pagehide(b);
    const exitIds = sentIds(exits(b));
    expect(exitIds).toHaveLength(20);
    expect(stored(storage).map((s) => [s.t, s.e.length])).toEqual([[0, 20]]);
    vi.clearAllTimers();

    vi.unstubAllGlobals();
    b = fakeBrowser({ storage }); // the visitor comes back
    m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    await settle();
    expect(deliveredIds(b)).toEqual(exitIds); // the same events (ids, seq): the CSV keeps one row each
    expect(b.fetches.flatMap((s) => s.body.events.map((e) => e.seq))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(stored(storage)).toEqual([]);
  });

  it('an exit request that fails (a content blocker cancels it, the network is gone) keeps its events queued and stored', async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    const errors: string[] = [];
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, onError: (error) => errors.push(error.message) });
    m.trackEvent('a');
    b.replies.push('network-error');
    pagehide(b);
    await settle();
    expect(exits(b)).toHaveLength(1);
    expect(errors).toEqual(['Failed to fetch']);
    expect(m.getQueueSize()).toBe(1);
    expect(stored(storage).map((s) => [s.t, s.e.map((e) => e.metricName)])).toEqual([[0, ['a']]]);
  });

  it("an event tracked in the host's own pagehide listener (run after ours) leaves too", async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    b.win.addEventListener('pagehide', () => m.trackEvent('timeOnPage', 42));
    m.trackEvent('a');
    pagehide(b);
    expect(exits(b).map((s) => s.body.events.map((e) => e.metricName))).toEqual([['a'], ['timeOnPage']]);
    expect(stored(storage)[0].e.map((e) => e.metricName)).toEqual(['a', 'timeOnPage']);
    await settle();
    expect(m.getQueueSize()).toBe(0);
  });

  it('an event tracked while the page is hidden leaves at once; with the endpoint failing, nothing leaves and it is stored at once', async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    b.doc.addEventListener('visibilitychange', () => m.trackEvent('hidden-by-host'));
    hide(b);
    m.trackEvent('later');
    expect(exits(b).map((s) => s.body.events.map((e) => e.metricName))).toEqual([['hidden-by-host'], ['later']]);
    await settle();
    const n = b.fetches.length;
    b.doc.visibilityState = 'visible';
    b.fallback = () => 'network-error';
    m.trackEvent('x');
    await m.flush(); // fails: a retry is pending, so nothing leaves at exit
    b.doc.visibilityState = 'hidden'; // (no event: a background tab)
    m.trackEvent('y');
    expect(b.fetches).toHaveLength(n + 1);
    expect(stored(storage)[0].e.map((e) => e.metricName)).toEqual(['x', 'y']);
  });

  it('events in flight are not sent again at exit, and events in an exit request not again by a batch', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, batchSize: 2 });
    const realFetch = globalThis.fetch as unknown as (u: string, i: RequestInit) => Promise<unknown>;
    const gates: (() => void)[] = [];
    vi.stubGlobal('fetch', async (u: string, i: RequestInit) => {
      await new Promise<void>((r) => gates.push(r));
      return realFetch(u, i);
    });
    m.trackEvent('inflight-1');
    m.trackEvent('inflight-2'); // a full batch: in flight
    await settle();
    m.trackEvent('queued');
    hide(b); // the exit request takes 'queued' only
    m.trackEvent('hidden'); // tracked while hidden: its own exit request; a full batch of ready events? none
    for (let i = 0; i < 4; i++) {
      await settle();
      gates.splice(0).forEach((open) => open());
    }
    await vi.advanceTimersByTimeAsync(60_000);
    const names = b.fetches.flatMap((s) => s.body.events.map((e) => e.metricName));
    expect(names.sort()).toEqual(['hidden', 'inflight-1', 'inflight-2', 'queued']);
    expect(m.getQueueSize()).toBe(0);
  });

  it('back/forward cache: the tracker keeps working after pageshow', async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, batchTimeout: 1000 });
    m.trackEvent('before');
    pagehide(b, true);
    expect(exits(b)).toHaveLength(1);
    await settle();
    pageshow(b, true);
    m.trackEvent('after');
    await vi.advanceTimersByTimeAsync(1000);
    await settle();
    expect(b.fetches.map((s) => [s.keepalive, s.body.events.map((e) => e.metricName)])).toEqual([
      [true, ['before']],
      [false, ['after']],
    ]);
  });
});

describe('page exit where fetch has no keepalive (Firefox before 133): sendBeacon', () => {
  it('sends the queue by sendBeacon as a string; the events stay stored for the next page load (a beacon is never answered)', async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage, keepalive: false });
    const onSend = vi.fn();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, onSend });
    m.trackEvent('a');
    m.trackEvent('b');
    pagehide(b);
    expect(b.fetches).toHaveLength(0);
    expect(b.beacons.map((s) => [s.url, s.body.events.map((e) => e.metricName)])).toEqual([[URL_, ['a', 'b']]]);
    expect(stored(storage).map((s) => [s.t, s.e.map((e) => e.metricName)])).toEqual([[0, ['a', 'b']]]);
    expect(onSend).not.toHaveBeenCalled();
  });

  it.each([
    ['missing', undefined],
    [
      'throwing',
      () => {
        throw new TypeError('beacon refused');
      },
    ],
  ])('sendBeacon %s: the queue is still handed over in storage at pagehide', async (_name, sendBeacon) => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage, keepalive: false });
    b.nav.sendBeacon = sendBeacon;
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, onError });
    m.trackEvent('a');
    expect(() => pagehide(b)).not.toThrow();
    expect(stored(storage).map((s) => [s.t, s.e.map((e) => e.metricName)])).toEqual([[0, ['a']]]);
    await settle();
    expect(b.fetches).toHaveLength(0);
    expect(onError).not.toHaveBeenCalled();
  });
});
