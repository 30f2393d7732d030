// Fake browser for unit tests: window/document as EventTargets, a localStorage double
// with quota and failure switches, a sessionStorage, location and history (pushState and
// replaceState change the URL, as in a browser), a recording sendBeacon and a scripted fetch.
import { afterEach, beforeEach, vi } from 'vitest';

type Mod = typeof import('../../src/index');

export class FakeStorage {
  #quota: number;
  #fail: boolean;
  constructor(quota = Infinity, fail = false) {
    this.#quota = quota;
    this.#fail = fail;
  }
  setQuota(q: number): void {
    this.#quota = q;
  }
  setFail(f: boolean): void {
    this.#fail = f;
  }
  get length(): number {
    return Object.keys(this).length;
  }
  key(i: number): string | null {
    return Object.keys(this)[i] ?? null;
  }
  getItem(k: string): string | null {
    return Object.prototype.hasOwnProperty.call(this, k) ? (this as unknown as Record<string, string>)[k] : null;
  }
  setItem(k: string, v: string): void {
    if (this.#fail) throw new DOMException('storage disabled', 'SecurityError');
    const others = Object.keys(this)
      .filter((x) => x !== k)
      .reduce((n, x) => n + x.length + this.getItem(x)!.length, 0);
    if (others + k.length + String(v).length > this.#quota) throw new DOMException('quota', 'QuotaExceededError');
    (this as unknown as Record<string, string>)[k] = String(v);
  }
  removeItem(k: string): void {
    delete (this as unknown as Record<string, string>)[k];
  }
  clear(): void {
    for (const k of Object.keys(this)) this.removeItem(k);
  }
}

export interface Sent {
  url: string;
  body: { sentAt: number; context: Record<string, unknown>; events: Array<Record<string, unknown>> };
  raw: string;
  keepalive: boolean;
  at: number;
  init: RequestInit;
  /** The fake server answered 2xx: the events count as delivered. */
  ok?: boolean;
}

export type Reply =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | 'network-error';

export interface Browser {
  win: EventTarget & { localStorage?: unknown };
  doc: EventTarget & { visibilityState: string; referrer: string };
  storage: FakeStorage | null;
  session: FakeStorage;
  nav: {
    sendBeacon: unknown;
    webdriver?: boolean;
    doNotTrack?: string | null;
    globalPrivacyControl?: boolean;
    /** Web Locks (absent unless a test sets it). */
    locks?: { request(name: string, callback: () => unknown): Promise<unknown> };
  };
  history: { pushState(data: unknown, unused: string, url?: string | URL | null): void; replaceState(data: unknown, unused: string, url?: string | URL | null): void };
  /** The page's URL now (location reads it). */
  url: URL;
  /** Back/forward: sets the URL and fires popstate, as the browser does. */
  popTo(url: string): void;
  /** A link to `#hash` or a typed hash: sets the URL and fires hashchange. */
  hashTo(hash: string): void;
  fetches: Sent[];
  beacons: Sent[];
  /** Replies for the next fetch calls, in order; afterwards `fallback`. */
  replies: Reply[];
  fallback: Reply | ((s: Sent) => Reply);
  beaconOk: boolean;
  /** While set, `fetch` records requests and never answers them (the page went away first). */
  hang: boolean;
}

export interface FakeBrowserOptions {
  storage?: FakeStorage | 'throw' | null;
  /** sessionStorage (shared by the page loads of one tab); 'throw' makes every access fail. */
  session?: FakeStorage | 'throw';
  /** The page's URL. Default http://127.0.0.1:5173/ */
  url?: string;
  referrer?: string;
  webdriver?: boolean;
  doNotTrack?: string;
  globalPrivacyControl?: boolean;
  /** `fetch` takes `keepalive` (`Request.prototype` has it), as in current browsers. Default true. */
  keepalive?: boolean;
}

export function fakeBrowser(opts: FakeBrowserOptions = {}): Browser {
  const storage = opts.storage === undefined ? new FakeStorage() : opts.storage;
  const session = opts.session === undefined ? new FakeStorage() : opts.session;
  const win = new EventTarget() as Browser['win'];
  Object.defineProperty(win, 'localStorage', {
    get() {
      if (storage === 'throw') throw new DOMException('denied', 'SecurityError');
      return storage;
    },
  });
  const doc = new EventTarget() as Browser['doc'];
  doc.visibilityState = 'visible';
  // as in a browser, `hidden` says whether visibilityState is 'hidden'
  Object.defineProperty(doc, 'hidden', { get: () => doc.visibilityState === 'hidden' });
  doc.referrer = opts.referrer ?? '';
  const go = (url: string | URL | null | undefined): void => {
    if (url == null) return;
    const next = new URL(String(url), b.url);
    // as browsers do: history cannot point at another origin
    if (next.origin !== b.url.origin) throw new DOMException(`cannot go to ${next.href}`, 'SecurityError');
    b.url = next;
  };
  const history: Browser['history'] = {
    pushState: (_data, _unused, url) => go(url),
    replaceState: (_data, _unused, url) => go(url),
  };
  const location = {
    get href() {
      return b.url.href;
    },
    get origin() {
      return b.url.origin;
    },
    get pathname() {
      return b.url.pathname;
    },
    get search() {
      return b.url.search;
    },
    get hash() {
      return b.url.hash;
    },
  };
  const b: Browser = {
    win,
    doc,
    storage: storage === 'throw' ? null : storage,
    session: session === 'throw' ? new FakeStorage() : session,
    nav: undefined as unknown as Browser['nav'],
    history,
    url: new URL(opts.url ?? 'http://127.0.0.1:5173/'),
    popTo: (url) => {
      go(url);
      win.dispatchEvent(new Event('popstate'));
    },
    hashTo: (hash) => {
      go(hash);
      win.dispatchEvent(new Event('hashchange'));
    },
    fetches: [],
    beacons: [],
    replies: [],
    fallback: (s) => ({ status: 200, body: { accepted: s.body.events.length, rejected: [] } }),
    beaconOk: true,
    hang: false,
  };
  const nav: Browser['nav'] = {
    sendBeacon: vi.fn((url: string, data: string) => {
      if (typeof data !== 'string') throw new Error('beacon body must be a string');
      if (!b.beaconOk) return false;
      b.beacons.push({ url, raw: data, body: JSON.parse(data), keepalive: true, at: Date.now(), init: {}, ok: true });
      return true;
    }),
    webdriver: opts.webdriver ?? false,
    doNotTrack: opts.doNotTrack ?? null,
    globalPrivacyControl: opts.globalPrivacyControl,
  };
  b.nav = nav;
  vi.stubGlobal('window', win);
  // The window's members as globals, as in a browser (the client uses them so).
  vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
  vi.stubGlobal('localStorage', undefined);
  Object.defineProperty(globalThis, 'localStorage', { configurable: true, get: () => (win as { localStorage?: unknown }).localStorage });
  vi.stubGlobal('document', doc);
  // Node's Request has `keepalive`; a browser without it (Firefox before 133) has a Request without.
  if (opts.keepalive === false) vi.stubGlobal('Request', class Request {});
  vi.stubGlobal('navigator', nav);
  vi.stubGlobal('location', location);
  vi.stubGlobal('history', history);
  if (session === 'throw') {
    vi.stubGlobal('sessionStorage', undefined);
    Object.defineProperty(globalThis, 'sessionStorage', {
      configurable: true,
      get() {
        throw new DOMException('denied', 'SecurityError');
      },
    });
  } else vi.stubGlobal('sessionStorage', session);
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit) => {
      const raw = String(init.body);
      const s: Sent = { url, raw, body: JSON.parse(raw), keepalive: !!init.keepalive, at: Date.now(), init };
      b.fetches.push(s);
      if (b.hang) return new Promise(() => {});
      const next = b.replies.length ? b.replies.shift()! : b.fallback;
      const r = typeof next === 'function' ? next(s) : next;
      if (r === 'network-error') throw new TypeError('Failed to fetch');
      s.ok = r.status >= 200 && r.status < 300;
      return {
        status: r.status,
        ok: r.status < 300,
        headers: new Headers(r.headers ?? {}),
        json: async () => (r.body === undefined ? Promise.reject(new SyntaxError('no body')) : r.body),
      };
    }),
  );
  return b;
}

/** A fresh copy of the module, as a new page load (or a second tab) would get. */
export async function load(): Promise<Mod> {
  vi.resetModules();
  return import('../../src/index');
}

/** Waits out the coalescing of localStorage writes (one a second at most, src/core.ts). */
export async function saved(): Promise<void> {
  await vi.advanceTimersByTimeAsync(1000);
}

/** Fake timers and a fixed clock for every test file. */
export function useFakeClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'], now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });
}

/** Lets pending promise chains (fetch → json → bookkeeping) finish. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(0);
}

export function hide(b: Browser): void {
  b.doc.visibilityState = 'hidden';
  b.doc.dispatchEvent(new Event('visibilitychange'));
}

export function pagehide(b: Browser, persisted = false): void {
  const e = new Event('pagehide') as Event & { persisted: boolean };
  e.persisted = persisted;
  b.win.dispatchEvent(e);
}

export function pageshow(b: Browser, persisted = true): void {
  b.doc.visibilityState = 'visible';
  const e = new Event('pageshow') as Event & { persisted: boolean };
  e.persisted = persisted;
  b.win.dispatchEvent(e);
}

/** Requests made at page exit: `fetch` with `keepalive`. */
export const exits = (b: Browser): Sent[] => b.fetches.filter((s) => s.keepalive);

export const sentIds = (list: Sent[]): string[] => list.flatMap((s) => s.body.events.map((e) => String(e.eventId)));

/** Event ids the fake server accepted (2xx) plus those handed to sendBeacon. */
export const deliveredIds = (b: Browser): string[] => [...sentIds(b.fetches.filter((s) => s.ok)), ...sentIds(b.beacons)];

export const stored = (s: FakeStorage | null): Array<{ key: string; t: number; e: Array<Record<string, unknown>> }> =>
  s
    ? Object.keys(s).map((key) => {
        const v = JSON.parse(s.getItem(key)!) as { t: number; e: Array<Record<string, unknown>> };
        return { key, t: v.t, e: v.e };
      })
    : [];

/**
 * A localStorage key of the client's own shape, `<prefix>:<36-character session id>`, for an
 * entry left by another page load (`id` padded to 36 characters).
 */
export const entryKey = (id: string, prefix = 'owned-analytics'): string => `${prefix}:${id.padEnd(36, '-')}`;
