// The tracker: its state, the queue and its localStorage mirror, sending, page exit and the
// consent states; exported: initializeAnalytics, trackEvent, flush and the read-only getters.
//
// The state lives in module variables (the minifier renames those, unlike an object's
// properties); a queue entry's properties are renamed by the build (scripts/build.mjs).
//
// Storage: each page load writes only its own key, `<storageKey>:<sessionId>` (a 36-character
// id), as {"t": heartbeat, "e": [events]} (saveNow; storedHeartbeat reads the heartbeat back). Writes are coalesced: one a second at most, plus one
// at page exit, so a burst of N events costs one serialisation of the queue, not N. Another page
// load adopts a key whose heartbeat is 0 (handed over at pagehide) or older than STALE_AFTER (a
// crashed tab). Keys of any other shape are the host's, even under the same prefix.
import { type Context, readLanding } from './page-context';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_BATCH_TIMEOUT,
  DEFAULT_MAX_QUEUE_BYTES,
  DEFAULT_MAX_QUEUE_EVENTS,
  DEFAULT_RETRY_BASE_DELAY,
  DEFAULT_RETRY_MAX_DELAY,
  HEARTBEAT_DIGITS,
  HEARTBEAT_START,
  KEEPALIVE_BODY_BYTES,
  MAX_BATCH_EVENTS,
  MAX_BODY_BYTES,
  MAX_CONTEXT_KEYS,
  MAX_CONTEXT_STRING,
  MAX_DELAY,
  SAVE_DELAY,
  SECOND,
  SESSION_ID_LENGTH,
  STALE_AFTER,
} from './constants';
import type { AnalyticsConfig, AnalyticsEvent, ConsentState, MetricName, SendResult } from './types';

/** A queued event, serialised once when it was tracked or adopted. */
export interface QueuedEvent {
  /**
   * Its JSON: a snapshot, so later changes to the objects the host passed are not sent, and
   * nothing the host does later can make the queue unserialisable.
   */
  serialized: string;
  /** UTF-8 length of `serialized`, for `maxQueueBytes` and request body limits. */
  utf8Length: number;
  /** It was in the last snapshot written to localStorage (so another tab may have adopted it). */
  stored?: Flag;
  /**
   * A request carrying it has not answered yet (a batch, a page-exit fetch): no other request
   * of this page load carries it meanwhile. It stays queued (and stored) until an answer
   * confirms it.
   */
  flying?: Flag;
}

type Numeric = 'batchTimeout' | 'retryBaseDelay' | 'retryMaxDelay' | 'maxQueueEvents' | 'maxQueueBytes' | 'batchSize';
/** Flags are 0 or 1: shorter than booleans once minified. */
type Flag = 0 | 1 | undefined;
/** A timer, or none: 0 (shorter than undefined once minified). */
// eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents -- a timer is a number in the DOM's types, not in Node's (tests)
type Timer = ReturnType<typeof setTimeout> | 0 | undefined;
/** The server's answer, as far as the client cares. */
type Answer = { rejected?: { error: string }[]; message?: string } | null;

/** `POST /events` URL; empty while the client is off (not initialised, disabled, opted out). */
let endpoint: string;
/** The host's config (read when needed: numeric options through `option`). */
let settings: AnalyticsConfig = {};
/** The batch context as JSON, serialised once by `initializeAnalytics`. */
let contextJson: string;
/** `batchSize`, checked and clamped to the server's limit. */
let batchSize: number;
/** Anything but `granted` and `denied` behaves as `pending`. */
let consent: ConsentState = 'granted';
/** Random id of this page load (the events' `sessionId`); set by the first initialisation. */
let session: string;
/**
 * The `seq` of this page load's last numbered event: each event trackEvent queues gets the
 * next one (page views included); events it refuses take none. See client/README.md,
 * "Sequence numbers".
 */
let sequence = 0;
let queue: QueuedEvent[] = [];
let droppedCount = 0;
/** `<storageKey>:` – every key the client writes starts with it. */
let prefix: string;
/**
 * localStorage and this page load's key there. Falsy with `persist: false` or unavailable
 * storage (typed as Storage: every use but forgetEntries's, which catches, goes through
 * `writableStorage`).
 */
let storage: Storage;
let queueKey: string;
/** Heartbeat of our last localStorage write (0: handed over); Infinity: nothing stored. */
let storedAt = Infinity;
/** Set at pagehide: from then on our entry says "adopt me" (t = 0), until a pageshow. */
let handedOver: Flag;
let saveTimer: Timer;
/** Storage write failures are reported once per page load. */
let storageReported: Flag;
/** The batch timeout or, while `retrying`, the retry. */
let timer: Timer;
/** Set while a retry is scheduled: nothing else is sent until it fires. */
let retrying: Flag;
/** Consecutive failed attempts; the retry delay doubles with each. */
let failures = 0;
/** Requests go one at a time: each send waits for the previous one. */
let sending = Promise.resolve();
/**
 * While page context is on (`pageContext` option): the session's landing referrer and campaign
 * fields (see page-context.ts), read once; else false.
 */
let pageContext: Context | false | undefined;

/**
 * A numeric option: the host's value if it is a positive number, else the default. A getter
 * that throws throws here: every caller is inside a try (sendLoop's included), so the queue and
 * flush() go on, and the option counts again as soon as it reads.
 */
const option = (name: Numeric, fallback: number): number => ((settings[name] as number) > 0 ? settings[name]! : fallback);

/** Calls one of the host's callbacks: nothing it does (throwing included) can break the client. */
function callHost<Name extends 'onError' | 'onSend'>(name: Name, argument: Error | SendResult): void {
  try {
    (settings[name] as ((value: typeof argument) => void) | undefined)?.(argument);
  } catch {
    // the host's callback must not break us
  }
}

/** Hands an error to the host's `onError`. */
export const report = (error: unknown): void => callHost('onError', error as Error);

/** A v4 UUID from getRandomValues (randomUUID exists only on https:// and localhost pages). */
const uuid = (): string =>
  '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (digit) =>
    (+digit ^ (crypto.getRandomValues(new Uint8Array(1))[0]! & (15 >> (+digit / 4)))).toString(16),
  );

/**
 * A queue entry for an event already serialised. One event over `maxQueueBytes` would push
 * every other event out of the queue, then itself: it throws instead.
 */
function entry(serialized: string): QueuedEvent {
  const utf8Length = new Blob([serialized]).size;
  if (utf8Length > option('maxQueueBytes', DEFAULT_MAX_QUEUE_BYTES)) throw Error('event over maxQueueBytes');
  return { serialized, utf8Length };
}

/**
 * After events were added: drops the oldest while the queue is over `maxQueueEvents` or
 * `maxQueueBytes`, and schedules the storage write.
 */
function boundQueue(): void {
  let dropped = 0;
  // The queue's UTF-8 bytes, summed here (the only place that needs them) rather than kept up
  // to date wherever events come and go.
  let bytes = queue.reduce((sum, event) => sum + event.utf8Length, 0);
  while (queue.length > option('maxQueueEvents', DEFAULT_MAX_QUEUE_EVENTS) || bytes > option('maxQueueBytes', DEFAULT_MAX_QUEUE_BYTES)) {
    // shift() is O(1) in current engines (they move the array's start rather than copy it)
    bytes -= queue.shift()!.utf8Length;
    dropped++;
  }
  if (dropped) {
    droppedCount += dropped;
    report(Error(`queue full: dropped ${dropped}`));
  }
  scheduleSave();
}

// ---- localStorage mirror ----

/** localStorage, if the client may write there now (persisting, consent granted). */
const writableStorage = (): Storage | false => consent === 'granted' && storage;
/** Requests may go now (on, consent granted); written as writableStorage is, so gzip shares the text. */
const sendingAllowed = (): unknown => consent === 'granted' && endpoint;

/** Writes the queue within SAVE_DELAY; a burst of events shares one write. */
function scheduleSave(): void {
  if (!saveTimer && writableStorage()) saveTimer = setTimeout(saveNow, SAVE_DELAY);
}

/**
 * Writes the queue now as `{"t":<heartbeat>,"e":[<the events' JSON>]}`; once handed over
 * (pagehide) with heartbeat 0, until a pageshow. storedHeartbeat, right below, reads the
 * heartbeat back without parsing: change the two together (a unit test checks they agree).
 */
function saveNow(): void {
  clearTimeout(saveTimer);
  saveTimer = 0;
  if (writableStorage()) {
    try {
      checkAdopted();
      const heartbeat = handedOver ? 0 : Date.now();
      storedAt = queue.length
        ? // an array in a template is joined with commas: the JSON list
          // eslint-disable-next-line @typescript-eslint/restrict-template-expressions
          (storage.setItem(queueKey, `{"t":${heartbeat},"e":[${queue.map((event) => ((event.stored = 1), event.serialized))}]}`), heartbeat)
        : (storage.removeItem(queueKey), Infinity);
    } catch (error) {
      // Quota, private mode: leave no stale copy for another tab to adopt; work in memory.
      forgetEntries();
      if (!storageReported) report(error);
      storageReported = 1;
    }
  }
}

/**
 * The heartbeat of an entry saveNow wrote, read without parsing the entry: a live page load's
 * entry starts with a recent heartbeat (13 digits of epoch ms). Anything else there (the 0 of an
 * entry handed over at pagehide, a tampered entry) reads as NaN, so as no live page load's.
 */
export const storedHeartbeat = (text: string): number => +text.slice(HEARTBEAT_START, HEARTBEAT_START + HEARTBEAT_DIGITS);

/** A localStorage key of the client's own shape: the prefix and a session id. */
const ours = (key: string): boolean => key.slice(0, -SESSION_ID_LENGTH) === prefix;

/**
 * Removes this page load's entry (consent pending, a failed write) or (`all`) every entry of
 * ours, those of ended page loads included (consent denied).
 */
function forgetEntries(all?: boolean): void {
  storedAt = Infinity;
  try {
    for (const key of all ? Object.keys(storage) : [queueKey]) if (ours(key)) storage.removeItem(key);
  } catch {
    // no storage (persist: false, disabled): nothing stored
  }
}

/**
 * Another page load may have adopted our entry: only possible once our heartbeat is stale (or
 * handed over), so this costs nothing on the hot path. If the entry is gone, the events it held
 * are someone else's now; events tracked since that write are still ours.
 */
function checkAdopted(): void {
  // (`Date.now() - STALE_AFTER` as in adoptLeftovers: gzip shares the text)
  if (storedAt <= Date.now() - STALE_AFTER && storage.getItem(queueKey) == null) {
    storedAt = Infinity;
    queue = queue.filter((event) => !event.stored);
  }
}

/**
 * Takes over queues left by page loads that ended (reload, closed or crashed tab). Anyone can
 * write to storage, so each event is checked: what does not have an event's shape (the
 * `eventId`, `sessionId`, `metricName` strings and a numeric `timestamp` it needs to be sent
 * again; the server checks the rest) or cannot be serialised again (nested too deeply) is
 * dropped and reported. Never throws: sending goes on whatever is stored.
 */
function adoptLeftovers(): number | undefined {
  if (writableStorage()) {
    try {
      checkAdopted(); // first, so that what another page load adopted is not sent again
      const adopted: QueuedEvent[] = [];
      // The same event in two entries is queued once (same event, same JSON). None of them can be
      // in our queue: what we tracked and stored left it above if someone adopted it.
      const known: Record<string, 1> = {};
      let malformed = 0;
      let serialized: string;
      for (const key of Object.keys(storage)) {
        if (key !== queueKey && ours(key)) {
          // Whatever an entry holds, nothing thrown here stops the adoption: an event that fails a
          // check, is nested too deeply for JSON.stringify or is over maxQueueBytes (entry) is one
          // malformed event; an entry that is not JSON or whose `e` is not a list, one more.
          try {
            const text = storage.getItem(key)!;
            // A live page load's entry is left alone, unparsed.
            if (storedHeartbeat(text) > Date.now() - STALE_AFTER) continue;
            (JSON.parse(text) as { e: Partial<Record<keyof AnalyticsEvent, unknown>>[] }).e.map((event) => {
              try {
                if (typeof event.eventId !== 'string' || typeof event.sessionId !== 'string' || typeof event.metricName !== 'string') malformed++;
                else if (!known[(serialized = JSON.stringify(event))]) {
                  adopted.push(entry(serialized));
                  known[serialized] = 1;
                }
              } catch {
                malformed++;
              }
            });
          } catch {
            malformed++;
          }
          // Its events are ours now (nothing below throws before they join the queue).
          storage.removeItem(key);
        }
      }
      if (malformed) report(Error(`bad stored events: dropped ${malformed}`));
      queue = adopted.concat(queue);
      boundQueue();
      return adopted.length;
    } catch (error) {
      report(error);
    }
  }
}

// ---- sending ----

/**
 * The page as the app sees it now: path, plus query (`pageQuery`) and hash (`hashRouting`).
 * `location` gives them percent-encoded (ASCII), so cutting them never splits a character.
 * (`hash` is a parameter only because that is shorter once minified: callers pass nothing.)
 */
export const pagePath = (hash = settings.hashRouting ? location.hash : ''): string =>
  // Without `pageQuery` every query goes: the page's and one inside the hash (`#/search?q=…`).
  (location.pathname + (settings.pageQuery ? location.search + hash : hash.split('?')[0])).slice(0, MAX_CONTEXT_STRING);

const requestBody = (events: QueuedEvent[]): string =>
  // an array in a template is joined with commas: the JSON list
  // eslint-disable-next-line @typescript-eslint/restrict-template-expressions
  `{"sentAt":${Date.now()},"context":${contextJson},"events":[${events.map((event) => event.serialized)}]}`;

/** Splits events into request bodies of at most `maxBytes` bytes and `batchSize` events. */
function splitIntoBodies(events: QueuedEvent[], maxBytes: number): QueuedEvent[][] {
  const bodies: QueuedEvent[][] = [];
  const envelopeBytes = new Blob([requestBody([])]).size;
  let current: QueuedEvent[] | undefined;
  let bytes = 0;
  for (const event of events) {
    if (!current || bytes + event.utf8Length >= maxBytes || current.length >= batchSize) {
      bodies.push((current = []));
      bytes = envelopeBytes;
    }
    current.push(event);
    bytes += event.utf8Length + 1; // and a comma
  }
  return bodies;
}

/** Timer callback (batch timeout or retry). */
function onTimer(): void {
  timer = retrying = 0;
  void sendQueued();
}

/** Marks events as carried by a request (1) or free again (0). */
const fly = (batch: QueuedEvent[], flying: Flag): unknown => batch.map((event) => (event.flying = flying));

/** The queued events no request carries now. */
const ready = (): QueuedEvent[] => queue.filter((event) => !event.flying);

/**
 * How long to wait after the `failures`-th failed attempt in a row (0: the first): a jittered
 * exponential backoff, 50–100 % of retryBaseDelay·2^failures capped at retryMaxDelay, or the
 * server's `Retry-After` (seconds or an HTTP date) if that is longer; at most MAX_DELAY.
 */
export const retryDelay = (failures: number, retryAfter?: string | null): number =>
  Math.min(
    MAX_DELAY,
    Math.max(
      Math.min(option('retryMaxDelay', DEFAULT_RETRY_MAX_DELAY), option('retryBaseDelay', DEFAULT_RETRY_BASE_DELAY) * 2 ** failures) * (0.5 + Math.random() / 2),
      // seconds, or an HTTP date; none: NaN, so 0
      +retryAfter! * SECOND || Date.parse(retryAfter!) - Date.now() || 0,
    ),
  );

/**
 * Sends one batch with `fetch` (`keepalive` at page exit: it outlives the page) and applies the
 * answer; never rejects. Network errors, 408, 429 and 5xx may succeed later: retried after
 * retryDelay, nothing else is sent meanwhile. Any other answer ends the batch. Until the answer, the events
 * stay queued and stored: a page that ends first leaves them to the next page load.
 */
async function deliver(batch: QueuedEvent[], keepalive?: boolean): Promise<void> {
  let status = 0;
  let body: Answer = null;
  let retryAfter: string | null | undefined;
  fly(batch, 1);
  try {
    // (key order: the one that gzips smallest)
    const response = await fetch(endpoint, { method: 'POST', credentials: 'omit', keepalive, body: requestBody(batch) });
    status = response.status;
    retryAfter = response.headers.get('retry-after');
    body = (await response.json()) as Answer;
  } catch (error) {
    if (!status) report(error); // a network error; an answer without a JSON body is no error
  }
  fly(batch, 0);
  callHost('onSend', { transport: 'fetch', events: batch.length, status, body });
  if (!status || status === 408 || status === 429 || status > 499) {
    const delay = retryDelay(failures++, retryAfter);
    if (status) report(Error(`HTTP ${status}: retry in ${delay | 0} ms`));
    // (A page-exit fetch may have scheduled one already: the later one counts.)
    clearTimeout(timer);
    retrying = 1;
    timer = setTimeout(onTimer, delay);
    return;
  }
  failures = 0;
  queue = queue.filter((event) => !batch.includes(event));
  scheduleSave();
  // Another 4xx would fail again: dropped, with the server's reason (`{"message": "…"}`). A 200 with
  // rejected events: those are dropped, the rest are stored.
  if (status > 299) report(Error(`HTTP ${status}: dropped ${batch.length}${body?.message ? ': ' + body.message : ''}`));
  else if (body?.rejected?.length) report(Error(`rejected: dropped ${body.rejected.length}: ${body.rejected[0]!.error}`));
}

/**
 * Sends queued events while at least `least` are ready (1: all of them; `batchSize`: only full
 * batches), one request at a time, after adopting what ended page loads left. Never rejects.
 */
const sendQueued = (least = 1): Promise<void> => (sending = sending.then(() => sendLoop(least)));

async function sendLoop(least: number): Promise<void> {
  let batch: QueuedEvent[];
  try {
    if (sendingAllowed() && !retrying) {
      // Two new page loads must not adopt the same leftover queue: the Web Lock serialises them.
      // Adopted events are due: then everything goes, batch after batch (as after a retry).
      if (await (navigator.locks?.request(prefix, adoptLeftovers).catch(adoptLeftovers) ?? adoptLeftovers())) least = 1;
      while (sendingAllowed() && !retrying && (batch = ready()).length >= least) {
        await deliver(splitIntoBodies(batch, MAX_BODY_BYTES)[0]!);
      }
    }
    armBatchTimer();
  } catch (error) {
    report(error);
  }
}

/** Sends `batchTimeout` ms after the first event waiting. */
function armBatchTimer(): void {
  if (!timer && queue.length && sendingAllowed()) timer = setTimeout(onTimer, Math.min(MAX_DELAY, option('batchTimeout', DEFAULT_BATCH_TIMEOUT)));
}

/**
 * Page exit (pagehide, visibilitychange to hidden, and any event tracked while the page is
 * hidden or after pagehide): the events no request carries leave by `fetch` with `keepalive`
 * (text/plain, no preflight, at most KEEPALIVE_BODY_BYTES each: the browser's keepalive budget), or by sendBeacon
 * where fetch has no keepalive; and the queue is written at once, since the page may never run
 * again. Nothing leaves while the endpoint is failing. Only an answer removes events: until
 * then they stay queued and stored, and a page that ends first leaves them to the next page
 * load (at least once: a copy that arrived twice is one row of the CSV). A beacon is never
 * answered: it is a copy, its events stay queued and stored, sent again by this page load if it
 * lives on or by the next one.
 */
function onPageExit(): void {
  if (handedOver || document.hidden) {
    try {
      if (sendingAllowed() && !failures) {
        for (const batch of splitIntoBodies(ready(), KEEPALIVE_BODY_BYTES)) {
          // Request.prototype has it where fetch takes keepalive (Firefox from 133)
          if ('keepalive' in Request.prototype) void deliver(batch, true);
          else navigator.sendBeacon(endpoint, requestBody(batch));
        }
      }
    } catch {
      // a throwing sendBeacon (or no Request): its events stay queued, and are stored below
    }
    saveNow();
  }
}

// ---- consent ----

/**
 * Moves to `next`, doing what the change implies for the queue and for storage: `pending` holds
 * events in memory only (nothing written, nothing sent), `denied` keeps nothing and clears what
 * the client stored. Any value but `granted` and `denied` behaves as `pending` (the safe side).
 */
export function applyConsent(next: ConsentState): void {
  const landingKey = prefix + 'landing';
  const granted = next === 'granted';
  const denied = next === 'denied';
  try {
    // granted: the landing fields are kept for the rest of the session (later page loads of the tab)
    if (granted) {
      if (pageContext) sessionStorage.setItem(landingKey, new URLSearchParams(pageContext as Record<string, string>) as unknown as string); // stored as a string
    } else if (denied) sessionStorage.removeItem(landingKey);
  } catch {
    // no sessionStorage: later page loads count as landing pages
  }
  if (!granted) {
    // Nothing is sent from now on; granting again sends at once rather than at the next retry.
    clearTimeout(timer);
    timer = retrying = 0;
    // pending: the stored queue moves back to memory. denied: nothing is kept, anywhere.
    forgetEntries(denied);
    if (denied) queue = [];
  } else if (consent !== next) void sendQueued(); // sends what was held, now (it runs after the line below)
  consent = next;
}

// ---- the API ----

/**
 * The batch context as JSON: the automatic fields (`webdriver`: automation, which the server
 * marks as bots; the landing fields unless page context is off), then the host's `context` (the
 * host's keys win); should both together exceed MAX_CONTEXT_KEYS, only the host's (there are at
 * most 9 automatic ones, so the host has some then). Throws for a context JSON cannot hold (a
 * BigInt, a cycle).
 */
function batchContext(hostContext: AnalyticsConfig['context']): string {
  const all = { ...pageContext, ...(navigator.webdriver && { webdriver: true }), ...hostContext };
  return JSON.stringify(Object.keys(all).length > MAX_CONTEXT_KEYS ? hostContext : all);
}

/**
 * Starts (or reconfigures) the tracker. Without `window` (SSR), with `enabled: false`, without
 * an endpoint, with a privacy signal under `respectPrivacySignals` or a `context` JSON cannot
 * hold, every call stays a no-op.
 */
export function initializeAnalytics(config: AnalyticsConfig): void {
  try {
    endpoint = '';
    if (!globalThis.document || !config?.endpoint || config.enabled === false) return; // SSR
    // Do Not Track, Global Privacy Control: honoured on request.
    if (config.respectPrivacySignals && (navigator.doNotTrack === '1' || (navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl)) return;
    settings = config;
    batchSize = Math.min(MAX_BATCH_EVENTS, option('batchSize', DEFAULT_BATCH_SIZE)) | 0 || 1;
    if (!session) {
      session = uuid();
      // The config's consent applies on the first initialisation only: a later call (a
      // re-render) keeps what setConsent chose since.
      consent = config.consent || consent;
      // pagehide hands our stored queue over to the next page load; a back/forward cache restore
      // (pageshow) takes it up again (saveNow drops what another page load adopted meanwhile).
      addEventListener('pagehide', () => {
        handedOver = 1;
        onPageExit();
      });
      addEventListener('pageshow', () => {
        handedOver = 0;
        saveNow();
      });
      document.addEventListener('visibilitychange', onPageExit);
    }
    prefix = (config.storageKey || 'owned-analytics') + ':';
    queueKey = prefix + session;
    try {
      storage = (config.persist !== false && localStorage) as Storage;
    } catch (error) {
      report(error); // storage disabled: memory only
    }
    pageContext = config.pageContext !== false && (pageContext || readLanding(prefix + 'landing'));
    // Serialised once. A context that throws is reported once, and the client stays off (what it
    // queued before is still stored and handed over at page exit).
    contextJson = batchContext(config.context);
    endpoint = config.endpoint;
    applyConsent(consent);
    void sendQueued(batchSize); // adopts queues left by earlier page loads; sends once a batch is full
    // Last, so that a wrong value (`true` rather than `pageViews`) is reported and breaks nothing else.
    if (config.autoPageViews) config.autoPageViews();
  } catch (error) {
    report(error);
  }
}

/** `attributes` as a string: a JSON object, or else kept as `{"raw": text}`. */
function parseAttributes(text: string): Record<string, unknown> {
  try {
    // JSON that starts with { is an object
    if (/^\s*\{/.test(text)) return JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { raw: text };
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
    if (!endpoint || consent === 'denied') return;
    // Serialised now: a snapshot of the attributes; cycles and BigInts throw here, not later,
    // and then the event takes no number (the count moves once it is queued).
    const event = entry(
      JSON.stringify({
        eventId: uuid(),
        timestamp: Date.now(),
        sessionId: session,
        seq: sequence + 1,
        metricName: String(metricName),
        value: Number.isFinite(value) ? value! : null,
        // undefined: left out of the JSON
        demoContentId: demoContentId == null ? undefined : String(demoContentId),
        metricAttributes: attributes ? (typeof attributes === 'string' ? parseAttributes(attributes) : attributes) : undefined,
        // A `pagePath` in the host's own context wins: then the event carries none of its own.
        context: pageContext && settings.context?.pagePath === undefined ? { pagePath: pagePath() } : undefined,
      } satisfies AnalyticsEvent),
    );
    sequence++;
    queue.push(event);
    boundQueue();
    // Tracked while the page is hidden or being left (the host's own exit handlers): sent now.
    onPageExit();
    // One send per full batch, however many events arrive while a request is in flight.
    if (queue.length === batchSize) void sendQueued(batchSize);
    else armBatchTimer();
  } catch (error) {
    report(error);
  }
}

/** Sends everything queued now (unless a retry is already scheduled). Never rejects. */
export const flush = (): Promise<void> => sendQueued();

/** Number of events waiting to be sent. */
export const getQueueSize = (): number => queue.length;

/** This page load's session id (random, nothing else), or null before initialisation. */
export const getSessionId = (): string | null => session || null;

/** Events dropped because the queue was full, since the page loaded. */
export const getDroppedCount = (): number => droppedCount;
