// Tampered storage, live host objects, odd inputs, and what a burst of events costs.
import { describe, expect, it, vi } from 'vitest';
import { FakeStorage, entryKey, fakeBrowser, hide, load, pagehide, pageshow, saved, sentIds, settle, stored, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';
useFakeClock();

const event = (id: string, extra: Record<string, unknown> = {}) => ({ eventId: id, timestamp: 1, sessionId: 'old', metricName: 'x', value: null, ...extra });

describe('tampered storage', () => {
  it.each([
    ['{"t":1}', '{"t":1}'],
    ['{"e":null}', '{"e":null}'],
    ['{"e":"str"}', '{"e":"str"}'],
    ['not JSON', '{not json'],
  ])('its own entry set to %s: nothing throws, events still go out', async (_name, junk) => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, onError, batchSize: 3 });
    m.trackEvent('a');
    await saved();
    storage.setItem(`owned-analytics:${m.getSessionId()}`, junk);
    expect(() => m.getQueueSize()).not.toThrow();
    expect(m.getQueueSize()).toBe(1);
    m.trackEvent('b');
    m.trackEvent('c');
    await settle();
    expect(b.fetches.flatMap((f) => f.body.events.map((e) => e.metricName))).toEqual(['a', 'b', 'c']);
    expect(m.getQueueSize()).toBe(0);
    expect(onError).not.toHaveBeenCalled();
  });

  it('leftover entries of another page load: only well-formed events are adopted; the rest is dropped and reported', async () => {
    const storage = new FakeStorage();
    storage.setItem(entryKey('a'), '{"e":"str"}');
    storage.setItem(entryKey('b'), '{"t":0,"e":null}');
    storage.setItem(entryKey('c'), JSON.stringify({ t: 0, e: [event('ok-1'), 's', null, [1], { eventId: 5 }, event('no-ts', { timestamp: 'x' }), event('ok-2')] }));
    storage.setItem(entryKey('d'), '{not json');
    storage.setItem('other-app', '{"e":"untouched"}');
    const b = fakeBrowser({ storage });
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, onError });
    await m.flush();
    // a timestamp is not needed to send an event again: the server checks it (and rejects that one)
    expect(sentIds(b.fetches)).toEqual(['ok-1', 'no-ts', 'ok-2']);
    // a: not an array, b: null, c: 4 bad events, d: not JSON
    expect(onError.mock.calls.map((c) => c[0].message)).toEqual(['bad stored events: dropped 7']);
    expect(Object.keys(storage)).toEqual(['other-app']);
    // another leftover later in the same page load: dropped and reported too (once: it is gone)
    storage.setItem(entryKey('e'), '{"e":"again"}');
    m.trackEvent('y');
    await m.flush();
    await m.flush();
    expect(onError.mock.calls.map((c) => c[0].message)).toEqual(['bad stored events: dropped 7', 'bad stored events: dropped 1']);
    expect(storage.getItem(entryKey('e'))).toBeNull();
  });

  it('an event nested too deeply to serialise again is dropped and reported; every other leftover event is still sent', async () => {
    const storage = new FakeStorage();
    storage.setItem(entryKey('good'), JSON.stringify({ t: 0, e: [event('good-1'), event('good-2')] }));
    const depth = 1e5;
    const deep = `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    storage.setItem(entryKey('deep'), `{"t":0,"e":[${JSON.stringify(event('deep')).slice(0, -1)},"metricAttributes":${deep}},${JSON.stringify(event('good-3'))}]}`);
    const b = fakeBrowser({ storage });
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, onError });
    await m.flush();
    expect(sentIds(b.fetches).sort()).toEqual(['good-1', 'good-2', 'good-3']);
    expect(onError.mock.calls.map((c) => c[0].message)).toEqual(['bad stored events: dropped 1']);
    expect(Object.keys(storage)).toEqual([]);
  });

  it('a live page load’s entry (fresh heartbeat) is left alone and not even parsed', async () => {
    const storage = new FakeStorage();
    const live = JSON.stringify({ t: Date.now(), e: [event('live')] });
    storage.setItem(entryKey('live'), live);
    const b = fakeBrowser({ storage });
    const parse = vi.spyOn(JSON, 'parse');
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, batchSize: 1 });
    for (let i = 0; i < 5; i++) m.trackEvent('x', i);
    await settle();
    expect(sentIds(b.fetches)).toHaveLength(5);
    expect(parse.mock.calls.filter((c) => c[0] === live)).toEqual([]);
    expect(storage.getItem(entryKey('live'))).toBe(live);
  });

  it("storageKey: only keys of the client's own shape (prefix + 36-character session id) are adopted or removed, the host's are kept", async () => {
    const storage = new FakeStorage();
    const session = new FakeStorage();
    storage.setItem('myapp:user', JSON.stringify({ t: 0, e: [event('not-an-event')] }));
    storage.setItem('myapp:token', 'abc');
    storage.setItem(entryKey('left', 'myapp'), JSON.stringify({ t: 0, e: [event('left')] }));
    session.setItem('myapp:theme', 'dark');
    const b = fakeBrowser({ storage, session });
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, storageKey: 'myapp', onError });
    m.trackEvent('a');
    await m.flush();
    expect(sentIds(b.fetches)[0]).toBe('left');
    expect(Object.keys(storage).sort()).toEqual(['myapp:token', 'myapp:user']);
    m.trackEvent('b');
    await vi.advanceTimersByTimeAsync(1000);
    m.setConsent('denied'); // removes what the client stored, and only that
    expect(Object.keys(storage).sort()).toEqual(['myapp:token', 'myapp:user']);
    expect(Object.keys(session)).toEqual(['myapp:theme']);
    expect(onError).not.toHaveBeenCalled();
  });

  it('an adopted event already in the queue is not queued twice', async () => {
    const storage = new FakeStorage();
    storage.setItem(entryKey('a'), JSON.stringify({ t: 0, e: [event('dup'), event('dup')] }));
    storage.setItem(entryKey('b'), JSON.stringify({ t: 0, e: [event('dup')] }));
    const b = fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    await m.flush();
    expect(sentIds(b.fetches)).toEqual(['dup']);
  });
});

describe('events are snapshots of what the host passed', () => {
  it('persist: false – mutating the attributes object later changes nothing that is sent', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, persist: false });
    const attributes: Record<string, unknown> = { step: 1, nested: { a: 1 } };
    m.trackEvent('x', 1, 'id', attributes);
    attributes.step = 2;
    (attributes.nested as Record<string, unknown>).a = 2;
    attributes.added = true;
    await m.flush();
    expect(b.fetches[0].body.events[0].metricAttributes).toEqual({ step: 1, nested: { a: 1 } });
  });

  it('persist: false – a cycle added to the attributes after tracking does not stall sending', async () => {
    const b = fakeBrowser();
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, persist: false, onError });
    const attributes: Record<string, unknown> = { ok: true };
    m.trackEvent('x', 1, undefined, attributes);
    attributes.self = attributes;
    m.trackEvent('y');
    await m.flush();
    expect(b.fetches.flatMap((f) => f.body.events.map((e) => e.metricName))).toEqual(['x', 'y']);
    expect(onError).not.toHaveBeenCalled();
  });

  it('a BigInt in the attributes is reported and only that event is lost', async () => {
    const b = fakeBrowser();
    const m = await load();
    const onError = vi.fn();
    m.initializeAnalytics({ endpoint: URL_, onError });
    m.trackEvent('bad', 1, undefined, { n: 10n });
    m.trackEvent('good');
    await m.flush();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(b.fetches[0].body.events.map((e) => e.metricName)).toEqual(['good']);
  });
});

describe('configFromEnv', () => {
  it.each([undefined, null])('tolerates %s: a disabled config', async (env) => {
    fakeBrowser();
    const m = await load();
    expect(() => m.configFromEnv(env)).not.toThrow();
    expect(m.configFromEnv(env, { context: { device: 'd' } })).toEqual({
      endpoint: undefined,
      enabled: false,
      batchSize: undefined,
      batchTimeout: undefined,
      context: { device: 'd' },
    });
  });
});

describe('storage writes are coalesced', () => {
  it('a burst of 500 events costs one localStorage write, made within a second', async () => {
    const storage = new FakeStorage();
    const setItem = vi.spyOn(storage, 'setItem');
    fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, batchSize: 500, maxQueueEvents: 1000 });
    const stringify = vi.spyOn(JSON, 'stringify');
    for (let i = 0; i < 499; i++) m.trackEvent('x', i, undefined, { i });
    // one serialisation per event (its own), none of the whole queue
    expect(stringify).toHaveBeenCalledTimes(499);
    expect(setItem).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(999);
    expect(setItem).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(setItem).toHaveBeenCalledTimes(1);
    expect(stored(storage)[0].e).toHaveLength(499);
  });

  it.each([
    ['pagehide', pagehide],
    ['visibilitychange to hidden', hide],
  ])('%s writes at once (the page may never run again)', async (_name, leave) => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    b.fallback = () => 'network-error';
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    await m.flush(); // fails: no beacon while the endpoint is failing
    m.trackEvent('b');
    expect(stored(storage)).toHaveLength(0);
    leave(b);
    expect(stored(storage)[0].e.map((e) => e.metricName)).toEqual(['a', 'b']);
  });

  it('pagehide hands the queue over (t = 0); a later visibilitychange or write keeps it handed over', async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    b.fallback = () => 'network-error';
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    await m.flush();
    pagehide(b);
    hide(b);
    await saved();
    expect(stored(storage)[0].t).toBe(0);
    pageshow(b); // back/forward cache: alive again
    expect(stored(storage)[0].t).toBe(Date.now());
  });

  it('a live tab whose stale entry was adopted keeps only what it tracked since its last write', async () => {
    const storage = new FakeStorage();
    const b = fakeBrowser({ storage });
    b.fallback = () => 'network-error';
    const tabA = await load();
    tabA.initializeAnalytics({ endpoint: URL_, retryBaseDelay: 1e6, retryMaxDelay: 1e6 });
    tabA.trackEvent('old-1');
    tabA.trackEvent('old-2');
    await tabA.flush(); // fails; the next retry is far away
    await saved();
    await vi.advanceTimersByTimeAsync(300_000); // A writes nothing for 5 minutes: stale
    b.fallback = (s) => ({ status: 200, body: { accepted: s.body.events.length, rejected: [] } });
    const tabB = await load();
    tabB.initializeAnalytics({ endpoint: URL_ });
    await tabB.flush(); // adopts A's entry
    expect(b.fetches.at(-1)!.body.events.map((e) => e.metricName)).toEqual(['old-1', 'old-2']);
    tabA.trackEvent('new'); // A is alive after all
    await saved();
    expect(tabA.getQueueSize()).toBe(1);
    expect(stored(storage)[0].e.map((e) => e.metricName)).toEqual(['new']);
    const names = b.fetches.filter((f) => f.ok).flatMap((f) => f.body.events.map((e) => String(e.metricName)));
    expect(names.filter((n) => n.startsWith('old'))).toEqual(['old-1', 'old-2']);
  });
});
