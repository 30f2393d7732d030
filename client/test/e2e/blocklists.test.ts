// The documented setups (docs/INTEGRATION.md, "A first-party endpoint") against the filter lists
// uBlock Origin enables by default, matched by a filter-list engine (@ghostery/adblocker): none of
// their requests — the script, the batches, the page-exit request — matches a blocking rule;
// and the paths the docs advise against are blocked, by the rules the docs name.
import { FiltersEngine, Request } from '@ghostery/adblocker';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultLists, ublockVersion } from './ublock';

let engine: FiltersEngine;

beforeAll(() => {
  const lists = defaultLists();
  expect(lists.map((list) => list.name)).toEqual(expect.arrayContaining(['easylist', 'easyprivacy', 'ublock-filters', 'ublock-privacy']));
  engine = FiltersEngine.parse(lists.map((list) => list.text).join('\n'), { loadCosmeticFilters: false, debug: true });
}, 120_000);

const PAGE = 'https://www.example.com/products/42';
/** What blocks `url` requested from PAGE as `type`, or '' when nothing does. */
function blockedBy(url: string, type: 'script' | 'xhr' | 'ping'): string {
  const result = engine.match(Request.fromRawDetails({ url, sourceUrl: PAGE, type }));
  return result.match ? String(result.filter) : '';
}

// fetch() with or without keepalive is an XHR-type request for content blockers; a beacon is `ping`.
const SETUPS = {
  'first-party path (CloudFront behavior, nginx, Netlify, Vercel)': 'https://www.example.com/events',
  'API Gateway custom domain on a subdomain': 'https://events.example.com/events',
  'API Gateway host': 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/api/events',
};

describe(`uBlock Origin ${ublockVersion()} default lists`, () => {
  it('load, with the rules the issue measured', () => {
    expect(blockedBy('https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/api/events', 'ping')).toContain('$ping,third-party');
  });

  it.each(Object.entries(SETUPS))('%s: batches and page-exit requests (fetch, keepalive) match no blocking rule', (_setup, endpoint) => {
    expect(blockedBy(endpoint, 'xhr')).toBe('');
  });

  it.each(['/owned-analytics.iife.js', '/assets/owned-analytics.iife.js', '/static/js/owned-analytics.iife.js'])('the script from the page’s origin (%s) matches no blocking rule', (path) => {
    expect(blockedBy(`https://www.example.com${path}`, 'script')).toBe('');
  });

  it('first-party endpoints: even the sendBeacon fallback (Firefox before 133) matches no blocking rule', () => {
    expect(blockedBy(SETUPS['first-party path (CloudFront behavior, nginx, Netlify, Vercel)'], 'ping')).toBe('');
    expect(blockedBy(SETUPS['API Gateway custom domain on a subdomain'], 'ping')).toBe('');
  });

  it('the paths the docs advise against are blocked, by the rules the docs name', () => {
    // /analytics/…: a rule names it, for every request type: documented, not worked around
    expect(blockedBy('https://www.example.com/analytics/events', 'xhr')).toContain('/analytics/event');
    // /api/events: beacons to it are blocked even first-party; an analytics.* subdomain too
    expect(blockedBy('https://www.example.com/api/events', 'ping')).toContain('/api/events|$ping,~third-party');
    expect(blockedBy('https://analytics.example.com/events', 'xhr')).toContain('://analytics.*/event');
    expect(blockedBy('https://stats.example.com/events', 'xhr')).not.toBe('');
    // any beacon to another host: why page exit no longer uses sendBeacon where fetch has keepalive
    expect(blockedBy(SETUPS['API Gateway host'], 'ping')).toContain('$ping,third-party');
  });
});
