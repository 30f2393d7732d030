// The client's whole state, in one object, plus the helpers every module uses.
//
// The build renames the properties of `State` and `QueuedEvent` (scripts/build.mjs, esbuild mangleProps): their
// names are for people and cost nothing. It refuses a name that the DOM or the public types
// also use, since renaming that would break the access.
import type { AnalyticsConfig, ConsentState, ContextValue } from './types';

export type Context = Record<string, ContextValue>;
type Timer = ReturnType<typeof setTimeout> | undefined;

/** A queued event, serialised once when it was tracked or adopted. */
export interface QueuedEvent {
  /** Its `eventId`. */
  uuid: string;
  /**
   * Its JSON: a snapshot, so later changes to the objects the host passed are not sent, and
   * nothing the host does later can make the queue unserialisable.
   */
  serialized: string;
  /** UTF-8 length of `serialized`, for `maxQueueBytes` and request body limits. */
  utf8Length: number;
  /** It was in the last snapshot written to localStorage (so another tab may have adopted it). */
  stored?: boolean;
}

/** The config with every numeric option checked and defaulted. */
export type Settings = AnalyticsConfig & Required<Pick<AnalyticsConfig, keyof typeof NUMERIC_DEFAULTS>>;

export const NUMERIC_DEFAULTS = {
  batchSize: 25,
  batchTimeout: 3e4,
  retryBaseDelay: 1e3,
  retryMaxDelay: 6e4,
  maxQueueEvents: 1e3,
  maxQueueBytes: 5e5,
};

export interface State {
  /** `POST /events` URL; empty while the client is off (not initialised, disabled, opted out). */
  endpointUrl: string;
  settings: Settings;
  /** Anything but `granted` and `denied` behaves as `pending`. */
  consentState: ConsentState;
  /** Random id of this page load (the events' `sessionId`). */
  session: string;

  queue: QueuedEvent[];
  /** Sum of `utf8Length` over `queue`, kept up to date on every change. */
  queueBytes: number;
  /** Ids of events in a fetch that has not answered yet: the page-exit beacon skips them. */
  inFlight: Set<string>;
  droppedCount: number;

  /** `<storageKey>:` – every key the client writes starts with it. */
  storagePrefix: string;
  /** localStorage key of this page load's queue; empty when not persisting. */
  queueKey: string;
  queueStorage?: Storage;
  /** Heartbeat of our last localStorage write (0: handed over at pagehide); -1: nothing stored. */
  storedAt: number;
  saveTimer: Timer;
  /** Kinds of problems already reported (some are reported once per page load). */
  reportedOnce: Set<string>;

  batchTimer: Timer;
  /** Set while a retry is scheduled: nothing else is sent until it fires. */
  retryTimer: Timer;
  /** Consecutive failed attempts; the retry delay doubles with each. */
  failures: number;
  /** Requests go one at a time: each send waits for the previous one. */
  sending?: Promise<void>;
  listening?: boolean;

  /** The session's landing referrer and campaign fields (see page-context.ts); unset until read. */
  landing?: Context;
}

export const state = {
  endpointUrl: '',
  settings: {},
  consentState: 'granted',
  session: '',
  queue: [],
  queueBytes: 0,
  inFlight: new Set(),
  droppedCount: 0,
  storedAt: -1,
  reportedOnce: new Set(),
  failures: 0,
} as unknown as State;

/** Calls one of the host's callbacks: nothing it does (throwing included) can break the client. */
export function callHost<Name extends 'onError' | 'onSend'>(
  name: Name,
  argument: Parameters<NonNullable<AnalyticsConfig[Name]>>[0],
): void {
  try {
    (state.settings[name] as ((value: typeof argument) => void) | undefined)?.(argument);
  } catch {
    // the host's callback must not break us
  }
}

/**
 * Hands an error to the host's `onError`. With `once`, only the first error of that kind in
 * this page load is reported.
 */
export function report(error: unknown, once?: string): void {
  if (once) {
    if (state.reportedOnce.has(once)) return;
    state.reportedOnce.add(once);
  }
  callHost('onError', error instanceof Error ? error : Error(String(error)));
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  !!value && typeof value === 'object' && !Array.isArray(value);

/** A queue entry for an event already serialised. */
export const queued = (uuid: string, serialized: string): QueuedEvent => ({
  uuid,
  serialized,
  utf8Length: new Blob([serialized]).size,
});

export function stopBatchTimer(): void {
  clearTimeout(state.batchTimer);
  state.batchTimer = undefined;
}
