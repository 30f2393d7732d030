// The heartbeat of a stored entry: saveNow writes it, storedHeartbeat reads it back without
// parsing the entry (that is how a live page load's entry is told from an ended one's). One
// layout, checked from both ends: what the client writes is what it reads.
import { describe, expect, it, vi } from 'vitest';
import { STALE_AFTER } from '../../src/constants';
import { FakeStorage, fakeBrowser, load, pagehide, pageshow, saved, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';

useFakeClock();

/** A page load that tracked one event and wrote its entry; the entry's text and the reader. */
async function written(now?: number) {
  if (now !== undefined) vi.setSystemTime(now);
  const storage = new FakeStorage();
  const b = fakeBrowser({ storage });
  const m = await load();
  const { storedHeartbeat } = await import('../../src/core');
  m.initializeAnalytics({ endpoint: URL_ });
  m.trackEvent('a');
  await saved();
  const text = (): string => storage.getItem(`owned-analytics:${m.getSessionId()}`)!;
  return { b, text, storedHeartbeat };
}

describe('the stored heartbeat, written and read back', () => {
  it.each([
    ['now', undefined],
    ['the first 13-digit epoch ms (2001)', 1e12],
    ['the last 13-digit epoch ms (2286)', 1e13 - 1e4],
  ])('reads back the heartbeat the client wrote: %s', async (_name, now) => {
    const { text, storedHeartbeat } = await written(now);
    expect(JSON.parse(text()).t).toBe(Date.now());
    expect(storedHeartbeat(text())).toBe(Date.now());
    // a live page load's entry: another page load leaves it alone
    expect(storedHeartbeat(text()) > Date.now() - STALE_AFTER).toBe(true);
  });

  it('an entry handed over at pagehide (heartbeat 0) reads as no live page load’s, and a pageshow makes it live again', async () => {
    const { b, text, storedHeartbeat } = await written();
    pagehide(b);
    expect(JSON.parse(text()).t).toBe(0);
    expect(storedHeartbeat(text()) > Date.now() - STALE_AFTER).toBe(false);
    pageshow(b);
    expect(storedHeartbeat(text())).toBe(Date.now());
  });

  it.each([
    ['another key order', `{"e":[],"t":${1_700_000_000_000}}`],
    ['a short heartbeat', '{"t":1,"e":[]}'],
    ['a heartbeat as a string', `{"t":"${1_700_000_000_000}","e":[]}`],
    ['no JSON at all', 'not json'],
  ])('anything the client does not write reads as NaN (so as no live page load’s): %s', async (_name, text) => {
    const { storedHeartbeat } = await import('../../src/core');
    expect(storedHeartbeat(text)).toBeNaN();
  });
});
