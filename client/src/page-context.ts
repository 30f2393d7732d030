// Page context: where the session came from (the landing page's referrer and campaign
// parameters). The tracker (core.ts) keeps them, adds them to each batch and the page path to each event.
import { MAX_CONTEXT_STRING } from './constants';
import type { ContextValue } from './types';

export type Context = Record<string, ContextValue>;

const LANDING_KEYS = ['referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content', 'gclid', 'fbclid'];

/**
 * The session's landing fields, from what an earlier page of the session stored under `key` in
 * sessionStorage or, on the session's first page, from this page's URL and referrer. Both go
 * through URLSearchParams and the same list of keys, so a tampered sessionStorage entry can only
 * yield known keys with string values. Values over MAX_CONTEXT_STRING characters are left out
 * rather than cut (a cut could split a character).
 */
export function readLanding(key: string): Context {
  const landing: Context = {};
  // Origin and path only (a referrer never has a fragment); and only another site's page is
  // where a session came from.
  const referrer = document.referrer.split('?')[0]!;
  let stored: string | null | undefined;
  let value: string | null;
  try {
    stored = sessionStorage.getItem(key);
  } catch {
    // unreadable: this page counts as the landing page
  }
  const source = new URLSearchParams(stored ?? location.search);
  // On the landing page (nothing stored): the referrer, or '' (left out below), even over a forged `?referrer=`.
  if (stored == null) source.set('referrer', referrer.startsWith(location.origin + '/') ? '' : referrer);
  for (const name of LANDING_KEYS) {
    if ((value = source.get(name)) && value.length <= MAX_CONTEXT_STRING) landing[name] = value;
  }
  return landing;
}

