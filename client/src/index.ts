/**
 * Owned Analytics browser client.
 *
 * Drop-in for the original module: `initializeAnalytics(config)` once, `trackEvent(...)`
 * anywhere, `flush()` when you want the queue sent now. Zero runtime dependencies and
 * never throws into the host app: every failure goes to the optional `onError` callback.
 * Wire contract: `POST <endpoint>` with `{"sentAt", "context", "events": [...]}`, as defined
 * by chalicelib/ingest/schema/events.schema.json in the repository.
 *
 * Each feature lives in its own module and the package has no side effects, so a bundler
 * keeps only what the app imports (page views, for one, cost nothing unless `pageViews` is used).
 */
export { initializeAnalytics, trackEvent, flush, flush as flushEvents, getQueueSize, getSessionId, getDroppedCount } from './core';
export { setConsent } from './consent';
export { pageViews } from './page-views';
export { configFromEnv } from './env';
export { MetricName } from './types';
export type {
  AnalyticsConfig,
  AnalyticsEnv,
  AnalyticsEvent,
  ConsentState,
  ContextValue,
  DeviceContext,
  PageViewTracker,
  SendResult,
} from './types';
