// What the client recovers goes out at once, batch after batch (adopted after a reload, held
// back by a retry); and no option getter or host object can wedge the queue or reject flush().
import { describe, expect, it, vi } from 'vitest';
import { FakeStorage, entryKey, fakeBrowser, load, settle, stored, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';

useFakeClock();

const leftover = (n: number, session = 'ended'): string =>
  JSON.stringify({ t: 0, e: Array.from({ length: n }, (_, i) => ({ eventId: `e-${i}`, timestamp: 1, sessionId: session, seq: i + 1, metricName: 'x', value: null })) });

describe('the client drains what it recovers', () => {
  it('30 events adopted at start all leave at once, as 25 + 5, not 25 now and 5 after batchTimeout', async () => {
    const storage = new FakeStorage();
    storage.setItem(entryKey('ended'), leftover(30));
    const b = fakeBrowser({ storage });
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    await settle();
    expect(b.fetches.map((s) => s.body.events.length)).toEqual([25, 5]);
    expect(b.fetches.every((s) => s.at === b.fetches[0].at)).toBe(true); // no timer in between
    expect(m.getQueueSize()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(stored(storage)).toEqual([]);
  });

  it('events held back by a retry all leave once it succeeds, batch after batch', async () => {
    const b = fakeBrowser();
    b.fallback = () => 'network-error';
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_, retryBaseDelay: 1000 });
    for (let i = 0; i < 60; i++) m.trackEvent('x', i);
    await settle();
    const failed = b.fetches.length;
    b.fallback = (s) => ({ status: 200, body: { accepted: s.body.events.length, rejected: [] } });
    await vi.advanceTimersByTimeAsync(1000); // the retry (500–1000 ms)
    await settle();
    expect(b.fetches.slice(failed).map((s) => s.body.events.length)).toEqual([25, 25, 10]);
    expect(m.getQueueSize()).toBe(0);
  });

  it('with only a few events of its own and nothing adopted, a page load still waits for a full batch or batchTimeout', async () => {
    const b = fakeBrowser();
    const m = await load();
    m.initializeAnalytics({ endpoint: URL_ });
    m.trackEvent('x');
    await settle();
    expect(b.fetches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(b.fetches).toHaveLength(1);
  });
});

describe('option getters and host objects cannot wedge the queue', () => {
  it.each(['batchTimeout', 'retryBaseDelay', 'retryMaxDelay', 'maxQueueEvents'] as const)(
    'a throwing %s getter: flush() resolves, nothing reaches the host as a rejection; once it reads again, events are sent',
    async (name) => {
      const b = fakeBrowser();
      let broken = true;
      const errors: string[] = [];
      const config = { endpoint: URL_, onError: (error: Error) => errors.push(error.message) };
      Object.defineProperty(config, name, {
        enumerable: true,
        get() {
          if (broken) throw new Error(`${name} getter broke`);
          return 1000;
        },
      });
      if (name.startsWith('retry')) b.replies.push('network-error'); // the retry path reads them
      const m = await load();
      m.initializeAnalytics(config);
      m.trackEvent('a');
      m.trackEvent('b');
      await expect(m.flush()).resolves.toBeUndefined();
      await expect(m.flush()).resolves.toBeUndefined();
      expect(errors).toContain(`${name} getter broke`);
      broken = false;
      m.trackEvent('c');
      await vi.advanceTimersByTimeAsync(60_000);
      await m.flush();
      const delivered = b.fetches.filter((s) => s.ok).flatMap((s) => s.body.events.map((e) => e.metricName));
      expect(delivered.sort()).toEqual(['a', 'b', 'c']);
      expect(m.getQueueSize()).toBe(0);
    },
  );
});
