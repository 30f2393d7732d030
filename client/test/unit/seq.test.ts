// `seq`: every event's number in its session (delivery you can measure). Numbered when
// trackEvent queues it, kept through storage, adoption and resends; events the client refuses
// or never creates take no number.
import { describe, expect, it, vi } from 'vitest';
import { FakeStorage, deliveredIds, fakeBrowser, hide, load, pagehide, settle, stored, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';

useFakeClock();

/** seq of every event the fake server accepted (2xx) or took by beacon, in sending order. */
const deliveredSeqs = (b: ReturnType<typeof fakeBrowser>, session?: string | null): unknown[] =>
  [...b.fetches.filter((s) => s.ok), ...b.beacons].flatMap((s) => s.body.events.filter((e) => !session || e.sessionId === session).map((e) => e.seq));

describe('seq', () => {
  it('numbers the events of a page load 1, 2, 3, … across batches, page views included', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, batchSize: 4, autoPageViews: m.pageViews });
    for (let i = 0; i < 6; i++) m.trackEvent('x', i);
    await m.flush();
    const events = b.fetches.flatMap((s) => s.body.events);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(events[0]).toMatchObject({ metricName: 'ContentPageLoad', seq: 1 });
    // a second initializeAnalytics (a re-render) keeps the session and its count
    m.initializeAnalytics({ endpoint: URL_, batchSize: 4 });
    m.trackEvent('y');
    await m.flush();
    expect(b.fetches.at(-1)!.body.events.map((e) => e.seq)).toEqual([8]);
  });

  it('an event the client refuses takes no number: before init, disabled, unserialisable, over maxQueueBytes', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.trackEvent('before init');
    m.initializeAnalytics({ endpoint: URL_, enabled: false });
    m.trackEvent('disabled');
    const errors: string[] = [];
    m.initializeAnalytics({ endpoint: URL_, maxQueueBytes: 2000, onError: (error) => errors.push(error.message) });
    m.trackEvent('a');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    m.trackEvent('cycle', 1, undefined, cycle);
    m.trackEvent('huge', 1, undefined, { text: 'x'.repeat(3000) });
    m.trackEvent('b');
    await m.flush();
    expect(errors).toHaveLength(2);
    expect(b.fetches.flatMap((s) => s.body.events.map((e) => [e.metricName, e.seq]))).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('a retried batch keeps its numbers', async () => {
    const b = fakeBrowser();
    b.replies = ['network-error', { status: 503, body: { message: 'sink' } }];
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('a');
    m.trackEvent('b');
    await m.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    m.trackEvent('c');
    await m.flush();
    expect(b.fetches.map((s) => s.body.events.map((e) => e.seq))).toEqual([[1, 2], [1, 2], [1, 2], [3]]);
    expect(deliveredSeqs(b)).toEqual([1, 2, 3]);
  });

  it('stored and adopted events keep their session and numbers; the next page load counts from 1', async () => {
    const storage = new FakeStorage();
    let b = fakeBrowser({ storage });
    b.beaconOk = false;
    b.fallback = () => 'network-error';
    let m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    const first = m.getSessionId();
    for (let i = 0; i < 3; i++) m.trackEvent('a', i);
    hide(b);
    pagehide(b); // refused beacons: the events stay stored for the next page load
    expect(stored(storage)[0].e.map((e) => e.seq)).toEqual([1, 2, 3]);
    vi.clearAllTimers();

    vi.unstubAllGlobals();
    b = fakeBrowser({ storage });
    m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('b');
    m.trackEvent('c');
    await m.flush();
    await settle();
    expect(deliveredIds(b)).toHaveLength(5);
    expect(deliveredSeqs(b, first)).toEqual([1, 2, 3]);
    expect(deliveredSeqs(b, m.getSessionId())).toEqual([1, 2]);
  });

  it('consent denied discards numbered events: granted again on the same page load, they show as a gap', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('sent');
    await m.flush();
    m.setConsent('pending');
    m.trackEvent('held');
    m.trackEvent('held');
    m.setConsent('denied');
    m.trackEvent('ignored'); // denied: not created, so not numbered
    m.setConsent('granted');
    m.trackEvent('after');
    await m.flush();
    expect(b.fetches.flatMap((s) => s.body.events.map((e) => [e.metricName, e.seq]))).toEqual([
      ['sent', 1],
      ['after', 4],
    ]);
  });

  it('events pushed out of a full queue keep their numbers: the gap shows the loss', async () => {
    const b = fakeBrowser();
    b.fallback = () => 'network-error';
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, maxQueueEvents: 3 });
    for (let i = 0; i < 5; i++) m.trackEvent('x', i);
    expect(m.getDroppedCount()).toBe(2);
    b.fallback = (s) => ({ status: 200, body: { accepted: s.body.events.length, rejected: [] } });
    await vi.advanceTimersByTimeAsync(120_000);
    await m.flush();
    expect(deliveredSeqs(b)).toEqual([3, 4, 5]);
  });
});
