// Page context: the page path of each event, and where the session came from (the landing
// page's referrer and campaign parameters), kept in sessionStorage so that every later page
// of the tab's session still says so.
import { type Context, state } from './state';

/** Context strings the client makes stay far below the server's 4096-character limit. */
export const MAX_CONTEXT_STRING = 1024;
const LANDING_KEYS = ['referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content', 'gclid', 'fbclid'];
/** The server accepts at most this many context keys. */
const MAX_CONTEXT_KEYS = 32;

const landingKey = (): string => state.storagePrefix + 'landing';

/**
 * The page as the app sees it now: path, plus query (`pageQuery`) and hash (`hashRouting`).
 * `location` gives them percent-encoded (ASCII), so cutting them never splits a character.
 */
export function currentPagePath(): string {
  const { pathname, search, hash } = location;
  const { pageQuery, hashRouting } = state.settings;
  return (pathname + (pageQuery ? search : '') + (hashRouting ? hash : '')).slice(0, MAX_CONTEXT_STRING);
}

/**
 * Reads the session's landing fields from sessionStorage or, on the session's first page, from
 * this page's URL and referrer. Both go through URLSearchParams and the same list of keys, so
 * a tampered sessionStorage entry can only yield known keys with string values. Values over
 * MAX_CONTEXT_STRING characters are left out rather than cut (a cut could split a character).
 */
export function readLanding(): void {
  if (state.landing) return;
  let stored: string | null = null;
  try {
    stored = sessionStorage.getItem(landingKey());
  } catch {
    // unreadable: this page counts as the landing page
  }
  const source = new URLSearchParams(stored ?? location.search);
  if (stored === null) {
    // Origin and path only; and only another site's page is where a session came from.
    const referrer = document.referrer.split(/[?#]/)[0];
    source.delete('referrer');
    if (referrer && !referrer.startsWith(location.origin + '/')) source.set('referrer', referrer);
  }
  const landing: Context = {};
  for (const key of LANDING_KEYS) {
    const value = source.get(key);
    if (value && value.length <= MAX_CONTEXT_STRING) landing[key] = value;
  }
  state.landing = landing;
}

/** Keeps the landing fields in sessionStorage for the rest of the session, or (`keep` false) forgets them. */
export function storeLanding(keep: boolean): void {
  try {
    if (!keep) sessionStorage.removeItem(landingKey());
    else if (state.landing) sessionStorage.setItem(landingKey(), new URLSearchParams(state.landing as Record<string, string>).toString());
  } catch {
    // no sessionStorage: later page loads count as landing pages
  }
}

/**
 * The batch context: the automatic fields, then the host's `context` (the host's keys win).
 * Should both together exceed the server's 32 keys, only the host's are sent.
 */
export function batchContext(): Context {
  const host = state.settings.context as Context;
  // Automation (headless browsers, test robots): the server marks these events as bots.
  const context: Context = { ...(state.settings.pageContext !== false && state.landing), ...(navigator.webdriver === true && { webdriver: true }), ...host };
  return Object.keys(context).length > MAX_CONTEXT_KEYS ? { ...host } : context;
}
