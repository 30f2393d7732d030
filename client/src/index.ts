/**
 * Owned Analytics browser client.
 *
 * Drop-in for the original module: `initializeAnalytics(config)` once, `trackEvent(...)`
 * anywhere, `flush()` when you want the queue sent now. Zero runtime dependencies and
 * never throws into the host app: every failure goes to the optional `onError` callback.
 * Wire contract: `POST <endpoint>` with `{"sentAt", "context", "events": [...]}` (see SPEC.md).
 */

/** Metric names of the original module. Any other string is a custom metric name. */
export enum MetricName {
  ContentElementInteraction = 'ContentElementInteraction',
  ContentPlayDuration = 'ContentPlayDuration',
  ContentPageLoad = 'ContentPageLoad',
  ContentSectionLoad = 'ContentSectionLoad',
  CustomerSatisfaction = 'CustomerSatisfaction',
}

/** A context value: the server stores context keys as top-level scalar columns. */
export type ContextValue = string | number | boolean | null;

/** Device/app context, sent once per batch and applied by the server to every event in it. */
export interface DeviceContext {
  device?: string;
  deviceCodename?: string;
  language?: string;
  appVersion?: string;
  gitCommitSha?: string;
  [key: string]: ContextValue | undefined;
}

/** One event as it travels in `events[]`. */
export interface AnalyticsEvent {
  eventId: string;
  timestamp: number;
  sessionId: string;
  metricName: string;
  value: number | null;
  demoContentId?: string;
  metricAttributes?: Record<string, unknown>;
}

/** What `onSend` receives after each delivery attempt. */
export interface SendResult {
  /** `fetch` (normal batches), `keepalive` (page exit, beacon refused) or `beacon` (page exit). */
  transport: 'fetch' | 'keepalive' | 'beacon';
  /** Number of events in the request. */
  events: number;
  /** HTTP status; 0 for a network error. Absent for beacons (their answer is never seen). */
  status?: number;
  /** Parsed JSON answer, e.g. `{"accepted": 3, "rejected": []}`; null if none. */
  body?: unknown;
}

/** Configuration; every option but `endpoint` has a default (see README.md). */
export interface AnalyticsConfig {
  /** URL of `POST /events`. Missing or empty: the client is a no-op. */
  endpoint?: string;
  /** `false` turns every call into a no-op. Default `true`. */
  enabled?: boolean;
  /** Send when this many events are queued (1–500). Default 25. */
  batchSize?: number;
  /** Send queued events at most this many ms after the first one. Default 30000. */
  batchTimeout?: number;
  /** Scalars sent once per batch (device, language, appVersion, …). Default `{}`. */
  context?: DeviceContext;
  /** First retry delay in ms; doubles per failure, with jitter. Default 1000. */
  retryBaseDelay?: number;
  /** Upper bound of the retry delay in ms (a longer `Retry-After` is honoured). Default 60000. */
  retryMaxDelay?: number;
  /** Most events kept queued; the oldest are dropped first (counted). Default 1000. */
  maxQueueEvents?: number;
  /** Most characters of queued JSON kept; the oldest are dropped first (counted). Default 500000. */
  maxQueueBytes?: number;
  /** localStorage key prefix. Default `"owned-analytics"`. */
  storageKey?: string;
  /** Keep unsent events in localStorage across reloads and crashes. Default `true`. */
  persist?: boolean;
  /** Accepted for compatibility with the original module and ignored: events are retried until delivered. */
  maxRetries?: number;
  /** Called with every error (network, HTTP, storage, dropped events). Default: none. */
  onError?: (error: Error) => void;
  /** Called after every delivery attempt, e.g. to show the server's answers. Default: none. */
  onSend?: (result: SendResult) => void;
}

/** Vite-style env object, e.g. `import.meta.env`. */
export type AnalyticsEnv = Record<string, string | boolean | undefined>;

type Events = AnalyticsEvent[];

const STALE = 3e5; // a stored queue untouched this long (ms) belongs to a dead tab
const BEACON_MAX = 64e3; // bytes per beacon body; the browser limit is 64 KiB
const BODY_MAX = 5e5; // bytes per fetch body; the server allows 1 MiB

let url = '';
let size = 25;
let wait = 3e4;
let base = 1e3;
let cap = 6e4;
let maxN = 1e3;
let maxB = 5e5;
let cfg: AnalyticsConfig = {};
let q: Events = [];
let flying: string[] = [];
let sid = '';
let pre = '';
let key = '';
let ls: Storage | undefined;
let saved = false;
let timer: ReturnType<typeof setTimeout> | 0 = 0;
let tries = 0;
let backoff = false;
let bound = false;
let dropped = 0;
let warned = false;

const now = Date.now;
const num = (v: unknown, d: number): number => ((v as number) > 0 ? (v as number) : d);
const bytes = (s: string): number => new Blob([s]).size;
const ids = (e: Events): string[] => e.map((x) => x.eventId);

function report(e: unknown): void {
  try {
    cfg.onError?.(e instanceof Error ? e : Error(String(e)));
  } catch {
    // the host's callback must not break us either
  }
}

function uuid(): string {
  try {
    return crypto.randomUUID();
  } catch {
    return '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) => {
      let r = (Math.random() * 16) | 0;
      try {
        r = crypto.getRandomValues(new Uint8Array(1))[0]!;
      } catch {
        // Math.random it is
      }
      return (+c ^ (r & (15 >> (+c / 4)))).toString(16);
    });
  }
}

const body = (e: Events): string => JSON.stringify({ sentAt: now(), context: cfg.context || {}, events: e });

/** Splits events into request bodies of at most `max` bytes and `size` events. */
function chunks(e: Events, max: number): Events[] {
  const out: Events[] = [];
  const empty = bytes(body([]));
  let cur: Events = [];
  let n = empty;
  for (const x of e) {
    const s = bytes(JSON.stringify(x)) + 1;
    if (cur.length && (n + s > max || cur.length >= size)) {
      out.push(cur);
      cur = [];
      n = empty;
    }
    cur.push(x);
    n += s;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Bounds the queue, then mirrors it to localStorage (t = heartbeat, 0 = hand over now). */
function save(t = now()): void {
  let d = 0;
  while (q.length > maxN || JSON.stringify(q).length > maxB) {
    q.shift();
    d++;
  }
  if (d) {
    dropped += d;
    report(Error(`queue full: dropped ${d} oldest events`));
  }
  if (!key) return;
  saved = false;
  try {
    if (q.length) ls!.setItem(key, JSON.stringify({ t, e: q }));
    else ls!.removeItem(key);
    saved = true;
  } catch (e) {
    try {
      ls!.removeItem(key);
    } catch {
      // storage unusable: memory only
    }
    if (!warned) report(e);
    warned = true;
  }
}

/** Storage is the truth for our own queue: another tab may have adopted it meanwhile. */
function sync(): void {
  if (saved) {
    try {
      q = JSON.parse(ls!.getItem(key)!).e;
    } catch {
      q = [];
    }
  }
}

/** Takes over queues left by page loads that ended (reload, closed or crashed tab). */
function adopt(): void {
  if (!key) return;
  for (const k of Object.keys(ls!)) {
    if (k != key && k.startsWith(pre)) {
      let o: { t?: number; e?: Events } | undefined;
      try {
        o = JSON.parse(ls!.getItem(k)!);
      } catch {
        // corrupt: removed below
      }
      if (!((o?.t as number) > now() - STALE)) {
        ls!.removeItem(k);
        const mine = ids(q);
        const e = Array.isArray(o?.e) ? o.e : [];
        q = [...e.filter((x) => !mine.includes(x.eventId)), ...q];
      }
    }
  }
  save();
}

function arm(): void {
  if (!timer && q.length) {
    timer = setTimeout(() => {
      timer = 0;
      void run();
    }, wait);
  }
}

function drop(b: Events): void {
  const gone = ids(b);
  q = q.filter((x) => !gone.includes(x.eventId));
  save();
}

function sent(r: SendResult): void {
  try {
    cfg.onSend?.(r);
  } catch {
    // ignore
  }
}

async function post(b: Events, keep: boolean): Promise<void> {
  const mine = ids(b);
  flying = flying.concat(mine);
  let status = 0;
  let res: { rejected?: { index: number; error: string }[] } | null = null;
  let r: Response | undefined;
  try {
    r = await fetch(url, { method: 'POST', body: body(b), keepalive: keep, credentials: 'omit' });
    status = r.status;
    res = await r.json().catch(() => null);
  } catch (e) {
    report(e);
  }
  flying = flying.filter((x) => !mine.includes(x));
  sent({ transport: keep ? 'keepalive' : 'fetch', events: b.length, status, body: res });
  if (!status || status == 408 || status == 429 || status > 499) {
    let d = Math.min(cap, base * 2 ** tries++) * (0.5 + Math.random() / 2);
    const ra = r?.headers.get('retry-after');
    const s = ra ? +ra * 1e3 || Date.parse(ra) - now() : 0;
    if (s > d) d = s;
    if (status) report(Error(`HTTP ${status}: retrying in ${Math.round(d)} ms`));
    if (!backoff) {
      backoff = true;
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = 0;
        backoff = false;
        void run();
      }, d);
    }
    return;
  }
  tries = 0;
  drop(b);
  // other 4xx would fail again: dropped. 200 with rejected events: those are dropped, the rest are stored.
  if (status > 299) report(Error(`HTTP ${status}: ${b.length} events dropped`));
  else if (res?.rejected?.length) report(Error(`${res.rejected.length} events rejected: ${res.rejected[0]!.error}`));
}

let chain: Promise<void> = Promise.resolve();

/** Sends queued events (all, or only full batches), one request at a time. */
const run = (all = true): Promise<void> => (chain = chain.then(() => go(all)));

async function go(all: boolean): Promise<void> {
  if (!url || backoff) return;
  try {
    sync();
    const locks = navigator.locks;
    await (locks ? locks.request(pre, adopt).catch(adopt) : adopt());
    clearTimeout(timer);
    timer = 0;
    while (url && !backoff && q.length >= (all ? 1 : size)) await post(chunks(q.slice(0, size), BODY_MAX)[0]!, false);
  } catch (e) {
    report(e);
  }
  arm();
}

/** Page exit: queued events leave by sendBeacon (text/plain, no preflight), <= 64 KiB each. */
function exit(ev: Event): void {
  try {
    const hide = ev.type == 'pagehide';
    if (!url || (!hide && document.visibilityState != 'hidden')) return;
    // While the endpoint is failing the events stay stored for the next page load instead.
    if (!tries) {
      for (const b of chunks(
        q.filter((x) => !flying.includes(x.eventId)),
        BEACON_MAX,
      )) {
        if (navigator.sendBeacon?.(url, body(b))) {
          drop(b);
          sent({ transport: 'beacon', events: b.length });
        } else void post(b, true);
      }
    }
    if (hide) save(0);
  } catch (e) {
    report(e);
  }
}

function show(): void {
  try {
    sync();
    save();
    arm();
  } catch (e) {
    report(e);
  }
}

/**
 * Starts (or reconfigures) the tracker. Without `window` (SSR), with `enabled: false` or
 * without an endpoint every call stays a no-op.
 */
export function initializeAnalytics(config: AnalyticsConfig): void {
  try {
    url = '';
    if (typeof window != 'object' || typeof document != 'object' || typeof fetch != 'function') return;
    if (!config || config.enabled === false || !config.endpoint) return;
    cfg = config;
    size = Math.min(500, num(config.batchSize, 25) | 0 || 1);
    wait = num(config.batchTimeout, 3e4);
    base = num(config.retryBaseDelay, 1e3);
    cap = num(config.retryMaxDelay, 6e4);
    maxN = num(config.maxQueueEvents, 1e3);
    maxB = num(config.maxQueueBytes, 5e5);
    sid ||= uuid();
    pre = (config.storageKey || 'owned-analytics') + ':';
    key = '';
    ls = undefined;
    if (config.persist !== false) {
      try {
        ls = window.localStorage;
        if (ls) key = pre + sid;
      } catch (e) {
        report(e);
      }
    }
    url = config.endpoint;
    if (!bound) {
      bound = true;
      window.addEventListener('pagehide', exit);
      window.addEventListener('pageshow', show);
      document.addEventListener('visibilitychange', exit);
    }
    void run(false); // adopts queues left by earlier page loads; sends once a batch is full
  } catch (e) {
    report(e);
  }
}

/**
 * Queues one event. `value` must be a finite number (anything else is sent as null);
 * `attributes` is an object or a string holding a JSON object.
 */
export function trackEvent(
  metricName: MetricName | (string & {}),
  value?: number | null,
  demoContentId?: string,
  attributes?: Record<string, unknown> | string,
): void {
  try {
    if (!url) return;
    let a = attributes;
    if (a && typeof a == 'string') {
      let p: unknown;
      try {
        p = JSON.parse(a);
      } catch {
        // kept as raw text below
      }
      a = p && typeof p == 'object' && !Array.isArray(p) ? (p as Record<string, unknown>) : { raw: a };
    }
    const e: AnalyticsEvent = {
      eventId: uuid(),
      timestamp: now(),
      sessionId: sid,
      metricName: String(metricName),
      value: Number.isFinite(value) ? value! : null,
    };
    if (demoContentId != null) e.demoContentId = String(demoContentId);
    if (a) e.metricAttributes = a as Record<string, unknown>;
    JSON.stringify(e); // throws on cycles or BigInt before the event can poison the queue
    sync();
    q.push(e);
    save();
    if (q.length >= size) void run(false);
    else arm();
  } catch (e) {
    report(e);
  }
}

/** Sends everything queued now (unless a retry is already scheduled). Never rejects. */
export function flush(): Promise<void> {
  return run();
}

/** Alias of `flush`, as in the original module. */
export const flushEvents = flush;

/** Number of events waiting to be sent. */
export function getQueueSize(): number {
  return q.length;
}

/** This page load's session id (random, nothing else), or null before initialisation. */
export function getSessionId(): string | null {
  return sid || null;
}

/** Events dropped because the queue was full, since the page loaded. */
export function getDroppedCount(): number {
  return dropped;
}

/** Builds the config from Vite-style env variables; `overrides` win. */
export function configFromEnv(env: AnalyticsEnv, overrides?: AnalyticsConfig): AnalyticsConfig {
  const n = (k: string): number | undefined => +(env[k] as string) || undefined;
  return {
    endpoint: (env.VITE_ANALYTICS_ENDPOINT as string) || undefined,
    enabled: /^(true|1|yes|on)$/i.test(String(env.VITE_ENABLE_CSV_ANALYTICS)),
    batchSize: n('VITE_ANALYTICS_BATCH_SIZE'),
    batchTimeout: n('VITE_ANALYTICS_BATCH_TIMEOUT'),
    ...overrides,
  };
}
