// The tracker: initializeAnalytics, trackEvent, flush and the read-only getters.
import { applyConsent } from './consent';
import { currentPagePath, readLanding } from './page-context';
import { armBatchTimer, onPageExit, onPageShow, sendQueued } from './send';
import { NUMERIC_DEFAULTS, type Settings, isObject, queued, report, state } from './state';
import { boundQueue, scheduleSave } from './storage';
import type { AnalyticsConfig, AnalyticsEvent, MetricName } from './types';

/** A v4 UUID. randomUUID exists only on https:// (and localhost) pages; getRandomValues everywhere. */
function uuid(): string {
  try {
    return crypto.randomUUID();
  } catch {
    return '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (digit) =>
      (+digit ^ (crypto.getRandomValues(new Uint8Array(1))[0]! & (15 >> (+digit / 4)))).toString(16),
    );
  }
}

/**
 * Starts (or reconfigures) the tracker. Without `window` (SSR), with `enabled: false`, without
 * an endpoint or with a privacy signal under `respectPrivacySignals` every call stays a no-op.
 */
export function initializeAnalytics(config: AnalyticsConfig): void {
  try {
    state.endpointUrl = '';
    if (typeof document !== 'object' || typeof fetch !== 'function') return; // SSR, old runtimes
    if (!config || config.enabled === false || !config.endpoint) return;
    // Do Not Track, Global Privacy Control: honoured on request.
    const nav = navigator as Navigator & { globalPrivacyControl?: boolean };
    if (config.respectPrivacySignals && (nav.doNotTrack === '1' || nav.globalPrivacyControl === true)) return;
    const settings = { ...config } as Settings;
    for (const name of Object.keys(NUMERIC_DEFAULTS) as (keyof typeof NUMERIC_DEFAULTS)[]) {
      settings[name] = (config[name] as number) > 0 ? config[name]! : NUMERIC_DEFAULTS[name];
    }
    settings.batchSize = Math.min(500, settings.batchSize | 0 || 1);
    state.settings = settings;
    if (!state.session) state.session = uuid();
    state.storagePrefix = (config.storageKey || 'owned-analytics') + ':';
    state.queueStorage = undefined;
    try {
      if (config.persist !== false) state.queueStorage = window.localStorage;
    } catch (error) {
      report(error); // storage disabled: memory only
    }
    state.queueKey = state.queueStorage ? state.storagePrefix + state.session : '';
    state.endpointUrl = config.endpoint;
    if (!state.listening) {
      state.listening = true;
      window.addEventListener('pagehide', onPageExit);
      window.addEventListener('pageshow', onPageShow);
      document.addEventListener('visibilitychange', onPageExit);
    }
    if (config.pageContext !== false) readLanding();
    // The config's state applies as setConsent would; the current one stays when it has none.
    applyConsent(config.consent || state.consentState);
    void sendQueued(false); // adopts queues left by earlier page loads; sends once a batch is full
    // Last, so that a wrong value (`true` rather than `pageViews`) is reported and breaks nothing else.
    if (config.autoPageViews) config.autoPageViews();
  } catch (error) {
    report(error);
  }
}

/** `attributes` as a string: a JSON object, or else kept as `{"raw": text}`. */
function parseAttributes(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed)) return parsed;
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
    const { settings } = state;
    if (!state.endpointUrl || state.consentState === 'denied') return;
    const event: AnalyticsEvent = {
      eventId: uuid(),
      timestamp: Date.now(),
      sessionId: state.session,
      metricName: String(metricName),
      value: Number.isFinite(value) ? value! : null,
    };
    if (demoContentId != null) event.demoContentId = String(demoContentId);
    if (attributes) event.metricAttributes = typeof attributes === 'string' ? parseAttributes(attributes) : attributes;
    // A `pagePath` in the host's own context wins: then the event carries none of its own.
    if (settings.pageContext !== false && settings.context?.pagePath === undefined) {
      event.context = { pagePath: currentPagePath() };
    }
    // Serialised now: a snapshot of the attributes; cycles and BigInts throw here, not later.
    const entry = queued(event.eventId, JSON.stringify(event));
    state.queue.push(entry);
    state.queueBytes += entry.utf8Length;
    boundQueue();
    scheduleSave();
    if (state.queue.length >= settings.batchSize) void sendQueued(false);
    else armBatchTimer();
  } catch (error) {
    report(error);
  }
}

/** Sends everything queued now (unless a retry is already scheduled). Never rejects. */
export function flush(): Promise<void> {
  return sendQueued();
}

/** Number of events waiting to be sent. */
export function getQueueSize(): number {
  return state.queue.length;
}

/** This page load's session id (random, nothing else), or null before initialisation. */
export function getSessionId(): string | null {
  return state.session || null;
}

/** Events dropped because the queue was full, since the page loaded. */
export function getDroppedCount(): number {
  return state.droppedCount;
}
