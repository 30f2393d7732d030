// Public types of the client. Wire contract: chalicelib/ingest/schema/events.schema.json.

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
  /**
   * The event's number in its session: 1 for the first event the page load tracked, then one
   * more per event (page views included), kept through storage, adoption and resends. Missing
   * numbers at the server are lost events (see README.md, "Sequence numbers").
   */
  seq?: number;
  metricName: string;
  value: number | null;
  demoContentId?: string;
  metricAttributes?: Record<string, unknown>;
  /** The event's own context (`pagePath`); the server stores its keys as top-level fields. */
  context?: Record<string, ContextValue>;
}

/** What `onSend` receives after each delivery attempt. */
export interface SendResult {
  /**
   * `fetch`: every request whose answer the client sees (batches, and page-exit requests, which
   * use `fetch` with `keepalive`). `beacon` is never reported any more: a beacon (the page-exit
   * fallback where `fetch` has no `keepalive`) is never answered.
   */
  transport: 'fetch' | 'beacon';
  /** Number of events in the request. */
  events: number;
  /** HTTP status; 0 for a network error. */
  status?: number;
  /** Parsed JSON answer, e.g. `{"accepted": 3, "rejected": []}`; null if none. */
  body?: unknown;
}

/**
 * `granted`: normal operation. `pending`: events are held in memory only (nothing is written
 * to storage, nothing is sent) until `setConsent('granted')`. `denied`: nothing is kept.
 */
export type ConsentState = 'granted' | 'pending' | 'denied';

/**
 * Automatic page views: pass the exported `pageViews` as the `autoPageViews` option. It is a
 * value rather than `true` so that apps which do not use it do not bundle its code.
 */
export type PageViewTracker = () => void;

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
  /**
   * Scalars sent once per batch (device, language, appVersion, …), read (serialised) by
   * `initializeAnalytics`: call it again to change them. Keys: identifiers (a letter, then
   * letters, digits or _, at most 64), none naming an event or server field in any letter case,
   * none starting with attr_, at most 32; values: strings of at most 4096 characters, numbers,
   * booleans or null. The server refuses a batch whose context breaks these rules (a 400,
   * reported to `onError` with its reason). Default `{}`.
   */
  context?: DeviceContext;
  /** First retry delay in ms; doubles per failure, with jitter. Default 1000. */
  retryBaseDelay?: number;
  /** Upper bound of the retry delay in ms (a longer `Retry-After` is honoured). Default 60000. */
  retryMaxDelay?: number;
  /** Most events kept queued; the oldest are dropped first (counted). Default 1000. */
  maxQueueEvents?: number;
  /** Most bytes (UTF-8) of queued event JSON kept; the oldest are dropped first (counted). Default 500000. */
  maxQueueBytes?: number;
  /**
   * Prefix of the client's keys: `<storageKey>:<sessionId>` in localStorage,
   * `<storageKey>:landing` in sessionStorage. No other key is read or removed, even under the
   * same prefix. Default `"owned-analytics"`.
   */
  storageKey?: string;
  /** Keep unsent events in localStorage across reloads and crashes. Default `true`. */
  persist?: boolean;
  /** Accepted for compatibility with the original module and ignored: events are retried until delivered. */
  maxRetries?: number;
  /** Add `pagePath` to every event and the session's landing referrer/UTM fields to every batch. Default `true`. */
  pageContext?: boolean;
  /** Keep the query string in `pagePath` (and page views), the hash's own too with `hashRouting`. Default `false`. */
  pageQuery?: boolean;
  /** Track a `ContentPageLoad` per page and SPA navigation: pass the exported `pageViews`. Default: off. */
  autoPageViews?: PageViewTracker | false | null;
  /**
   * The location hash is part of the page (`pagePath`, page views): for hash-based routers. A
   * query inside the hash (`#/search?q=…`) is left out unless `pageQuery`. Default `false`.
   */
  hashRouting?: boolean;
  /**
   * Initial consent state, applied by the first `initializeAnalytics` only (later calls keep the
   * current state: change it with `setConsent`). Default `'granted'`.
   */
  consent?: ConsentState;
  /**
   * Honour `navigator.doNotTrack === '1'` and `navigator.globalPrivacyControl === true`: the
   * client does nothing (it does not clear what earlier page loads stored either). Default `false`.
   */
  respectPrivacySignals?: boolean;
  /** Called with every error (network, HTTP, storage, dropped events). Default: none. */
  onError?: (error: Error) => void;
  /** Called after every delivery attempt, e.g. to show the server's answers. Default: none. */
  onSend?: (result: SendResult) => void;
}

/** Vite-style env object, e.g. `import.meta.env`. */
export type AnalyticsEnv = Record<string, string | boolean | undefined>;
