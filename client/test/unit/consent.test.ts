// Consent states and every transition between them; privacy signals.
import { describe, expect, it, vi } from 'vitest';
import { FakeStorage, deliveredIds, entryKey, fakeBrowser, hide, load, pagehide, saved, sentIds, settle, stored, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';
const LANDING = 'http://127.0.0.1:5173/?utm_source=news';
useFakeClock();

/** Everything the client could have written: localStorage and sessionStorage entries. */
const written = (storage: FakeStorage, session: FakeStorage): string[] => [...Object.keys(storage), ...Object.keys(session)];

async function pending(opts: { batchSize?: number } = {}) {
  const storage = new FakeStorage();
  const session = new FakeStorage();
  const b = fakeBrowser({ storage, session, url: LANDING });
  const m = await load();
  const onError = vi.fn();
  m.initializeAnalytics({ endpoint: URL_, consent: 'pending', batchSize: opts.batchSize ?? 3, batchTimeout: 1000, onError });
  return { b, m, storage, session, onError };
}

describe("consent: 'pending'", () => {
  it('holds events in memory: nothing sent (batch full, timeout, flush, page exit), nothing written to any storage', async () => {
    const { b, m, storage, session } = await pending();
    for (let i = 0; i < 7; i++) m.trackEvent('held', i);
    expect(m.getQueueSize()).toBe(7);
    await m.flush();
    await vi.advanceTimersByTimeAsync(60_000);
    hide(b);
    pagehide(b);
    await settle();
    expect(b.fetches).toHaveLength(0);
    expect(b.beacons).toHaveLength(0);
    expect(written(storage, session)).toEqual([]);
    expect(m.getQueueSize()).toBe(7);
  });

  it('does not adopt (or delete) queues left by earlier page loads', async () => {
    const storage = new FakeStorage();
    storage.setItem(entryKey('old'), JSON.stringify({ t: 0, e: [{ eventId: 'left', timestamp: 1, sessionId: 'o', metricName: 'x', value: null }] }));
    const b = fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, consent: 'pending' });
    await m.flush();
    expect(b.fetches).toHaveLength(0);
    expect(Object.keys(storage)).toEqual([entryKey('old')]);
  });

  it('→ granted: sends what was held at once, exactly once; storage is used from then on', async () => {
    const { b, m, storage, session } = await pending({ batchSize: 25 });
    for (let i = 0; i < 4; i++) m.trackEvent('held', i);
    m.setConsent('granted');
    await settle();
    expect(b.fetches).toHaveLength(1);
    expect(b.fetches[0].body.events.map((e) => e.value)).toEqual([0, 1, 2, 3]);
    expect(b.fetches[0].body.context).toEqual({ utm_source: 'news' });
    expect(session.getItem('owned-analytics:landing')).toBe('utm_source=news');
    m.setConsent('granted'); // no change: nothing sent again
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sentIds(b.fetches)).toHaveLength(4);
    b.fallback = () => 'network-error';
    m.trackEvent('after');
    await saved();
    expect(stored(storage)[0].e.map((e) => e.metricName)).toEqual(['after']);
  });

  it('→ denied: drops what was held; nothing is ever sent or written', async () => {
    const { b, m, storage, session } = await pending();
    m.trackEvent('held');
    m.setConsent('denied');
    expect(m.getQueueSize()).toBe(0);
    m.trackEvent('ignored');
    expect(m.getQueueSize()).toBe(0);
    await m.flush();
    pagehide(b);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.fetches).toHaveLength(0);
    expect(b.beacons).toHaveLength(0);
    expect(written(storage, session)).toEqual([]);
  });

  it('an unknown state behaves as pending', async () => {
    const { b, m, storage, session } = await pending();
    m.setConsent('granted');
    m.setConsent('maybe' as 'pending');
    m.trackEvent('held');
    await m.flush();
    await saved();
    expect(b.fetches).toHaveLength(0);
    expect(Object.keys(storage)).toEqual([]);
    expect(m.getQueueSize()).toBe(1);
    expect(Object.keys(session)).toEqual(['owned-analytics:landing']); // written while granted
  });
});

describe("consent: 'granted' (the default) →", () => {
  async function granted() {
    const storage = new FakeStorage();
    const session = new FakeStorage();
    storage.setItem(entryKey('dead-tab'), JSON.stringify({ t: Date.now(), e: [] }));
    storage.setItem('host-key', 'kept');
    session.setItem('host-key', 'kept');
    const b = fakeBrowser({ storage, session, url: LANDING });
    b.fallback = () => 'network-error';
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, retryBaseDelay: 1e6 });
    m.trackEvent('a');
    await m.flush(); // fails: kept
    await saved();
    expect(Object.keys(storage)).toHaveLength(3);
    expect(session.getItem('owned-analytics:landing')).toBe('utm_source=news');
    return { b, m, storage, session };
  }

  it('denied: the queue is dropped; our entries in localStorage and sessionStorage are cleared, the host’s kept', async () => {
    const { b, m, storage, session } = await granted();
    m.setConsent('denied');
    expect(m.getQueueSize()).toBe(0);
    expect(Object.keys(storage)).toEqual(['host-key']);
    expect(Object.keys(session)).toEqual(['host-key']);
    b.fallback = (s) => ({ status: 200, body: { accepted: s.body.events.length, rejected: [] } });
    m.trackEvent('b');
    await vi.advanceTimersByTimeAsync(2e6); // the retry scheduled before was cancelled
    pagehide(b);
    expect(deliveredIds(b)).toEqual([]);
    expect(Object.keys(storage)).toEqual(['host-key']);
  });

  it('pending: the stored queue moves back to memory; granted again sends it', async () => {
    const { b, m, storage } = await granted();
    m.setConsent('pending');
    expect(Object.keys(storage).filter((k) => k.startsWith('owned-analytics:') && k !== entryKey('dead-tab'))).toEqual([]);
    m.trackEvent('b');
    await saved();
    expect(Object.keys(storage).sort()).toEqual(['host-key', entryKey('dead-tab')]);
    expect(m.getQueueSize()).toBe(2);
    b.fallback = (s) => ({ status: 200, body: { accepted: s.body.events.length, rejected: [] } });
    m.setConsent('granted'); // sends at once, not at the retry scheduled before
    await settle();
    expect(deliveredIds(b)).toHaveLength(2);
    expect(m.getQueueSize()).toBe(0);
  });
});

describe("consent: 'denied' →", () => {
  it('granted: new events are tracked and sent again', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, consent: 'denied' });
    m.trackEvent('lost');
    m.setConsent('granted');
    m.trackEvent('kept');
    await m.flush();
    expect(b.fetches.flatMap((f) => f.body.events.map((e) => e.metricName))).toEqual(['kept']);
  });

  it('at start clears what earlier page loads stored', async () => {
    const storage = new FakeStorage();
    const session = new FakeStorage();
    storage.setItem(entryKey('old'), JSON.stringify({ t: 0, e: [] }));
    session.setItem('owned-analytics:landing', 'utm_source=x');
    const b = fakeBrowser({ storage, session });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, consent: 'denied' });
    expect(written(storage, session)).toEqual([]);
    await m.flush();
    expect(b.fetches).toHaveLength(0);
  });
});

describe('setConsent and initializeAnalytics', () => {
  it('setConsent before initializeAnalytics sets the starting state', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.setConsent('pending');
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('held');
    await m.flush();
    expect(b.fetches).toHaveLength(0);
    m.setConsent('granted');
    await settle();
    expect(sentIds(b.fetches)).toHaveLength(1);
  });

  it("a config's consent applies on the first initialisation only; later calls keep the state", async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, consent: 'pending' });
    m.trackEvent('held');
    m.initializeAnalytics({ endpoint: URL_ }); // e.g. a re-render: still pending
    await m.flush();
    expect(b.fetches).toHaveLength(0);
    m.initializeAnalytics({ endpoint: URL_, consent: 'granted' }); // not a way to change it: setConsent is
    await settle();
    expect(b.fetches).toHaveLength(0);
    m.setConsent('granted');
    await settle();
    expect(sentIds(b.fetches)).toHaveLength(1);
  });

  it("re-initialising with the first config's consent does not undo setConsent (a re-render after the visitor refused)", async () => {
    const b = fakeBrowser();
    const m = await load();
    const config = { endpoint: URL_, consent: 'pending' as const };
    m.initializeAnalytics(config);
    m.setConsent('denied');
    m.initializeAnalytics(config);
    m.trackEvent('a');
    expect(m.getQueueSize()).toBe(0);
    m.setConsent('granted');
    m.initializeAnalytics({ ...config, consent: 'denied' });
    m.trackEvent('b');
    await m.flush();
    expect(b.fetches.flatMap((f) => f.body.events.map((e) => e.metricName))).toEqual(['b']);
  });

  it('setConsent never throws, whatever storage does', async () => {
    fakeBrowser({ storage: 'throw', session: 'throw' });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    expect(() => {
      m.setConsent('pending');
      m.setConsent('denied');
      m.setConsent('granted');
    }).not.toThrow();
  });
});

describe('respectPrivacySignals', () => {
  it.each([
    ['Do Not Track', { doNotTrack: '1' }],
    ['Global Privacy Control', { globalPrivacyControl: true }],
  ])('%s with respectPrivacySignals: true makes the client a no-op', async (_name, signal) => {
    const storage = new FakeStorage();
    const session = new FakeStorage();
    const b = fakeBrowser({ storage, session, ...signal });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, respectPrivacySignals: true });
    m.trackEvent('a');
    await m.flush();
    pagehide(b);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.fetches).toHaveLength(0);
    expect(b.beacons).toHaveLength(0);
    expect(m.getQueueSize()).toBe(0);
    expect(written(storage, session)).toEqual([]);
  });

  it.each([
    ['signals ignored by default', { doNotTrack: '1', globalPrivacyControl: true }, {}],
    ['no signal set', { doNotTrack: '0' }, { respectPrivacySignals: true }],
  ])('%s: events are sent', async (_name, signal, option) => {
    const b = fakeBrowser(signal);
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, ...option });
    m.trackEvent('a');
    await m.flush();
    expect(sentIds(b.fetches)).toHaveLength(1);
  });
});
