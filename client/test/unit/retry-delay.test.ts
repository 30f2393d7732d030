// retryDelay: how long the client waits before sending a failed batch again. Its bounds
// (50–100 % of the backoff), its growth (doubling per failure), its cap (retryMaxDelay, and
// what setTimeout takes) and Retry-After. client.test.ts checks the same schedule end to end.
import { describe, expect, it, vi } from 'vitest';
import { MAX_DELAY } from '../../src/constants';
import type { AnalyticsConfig } from '../../src/types';
import { fakeBrowser, load, useFakeClock } from './harness';

const URL_ = 'http://127.0.0.1:8000/events';

useFakeClock();

/** retryDelay of a fresh page load, initialised with `config` (none: the defaults). */
async function retryDelayWith(config?: AnalyticsConfig) {
  fakeBrowser();
  const m = await load();
  if (config) m.initializeAnalytics({ endpoint: URL_, ...config });
  return (await import('../../src/core')).retryDelay;
}

const schedule = (retryDelay: (failures: number) => number, attempts: number): number[] =>
  Array.from({ length: attempts }, (_, failures) => Math.round(retryDelay(failures)));

describe('retryDelay', () => {
  it('doubles from retryBaseDelay (1 s) up to retryMaxDelay (60 s): random = 0 gives half of it', async () => {
    const retryDelay = await retryDelayWith();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect(schedule(retryDelay, 9)).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('random → 1 gives all of it', async () => {
    const retryDelay = await retryDelayWith();
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    expect(schedule(retryDelay, 9).map((ms) => Math.round(ms / 10) * 10)).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  });

  it('stays within 50–100 % of the capped backoff, whatever the random number', async () => {
    const retryDelay = await retryDelayWith({ retryBaseDelay: 100, retryMaxDelay: 5000 });
    for (let failures = 0; failures < 12; failures++) {
      const backoff = Math.min(5000, 100 * 2 ** failures);
      for (let i = 0; i < 50; i++) {
        const delay = retryDelay(failures);
        expect(delay).toBeGreaterThanOrEqual(backoff / 2);
        expect(delay).toBeLessThanOrEqual(backoff);
      }
    }
  });

  it('a failure count far past the cap stays at the cap', async () => {
    const retryDelay = await retryDelayWith();
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    expect(Math.round(retryDelay(1100))).toBe(60000); // 2^1100 is Infinity
  });

  it.each([
    ['negative', { retryBaseDelay: -1, retryMaxDelay: -1 }],
    ['not numbers', { retryBaseDelay: 'fast', retryMaxDelay: null } as unknown as AnalyticsConfig],
  ])('options that are %s count as the defaults', async (_name, config) => {
    const retryDelay = await retryDelayWith(config);
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect(schedule(retryDelay, 8)).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('a longer Retry-After wins, in seconds or as an HTTP date; a shorter or unreadable one does not', async () => {
    const retryDelay = await retryDelayWith();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect(retryDelay(0, '120')).toBe(120_000);
    expect(retryDelay(0, new Date(Date.now() + 90_000).toUTCString())).toBe(90_000);
    expect(retryDelay(0, '0.1')).toBe(500);
    expect(retryDelay(0, 'soon')).toBe(500);
    expect(retryDelay(0, null)).toBe(500);
  });

  it('never more than setTimeout takes (2^31 − 1 ms): a Retry-After or options beyond it wait that long', async () => {
    expect((await retryDelayWith())(0, String(3e6))).toBe(MAX_DELAY);
    const retryDelay = await retryDelayWith({ retryBaseDelay: 1e10, retryMaxDelay: 1e10 });
    expect(retryDelay(0)).toBe(MAX_DELAY);
    expect(MAX_DELAY).toBe(2 ** 31 - 1);
  });
});
