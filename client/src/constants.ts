// The tracker's numbers, each named for why it is what it is. A module of their own: the build
// (esbuild with minifySyntax, scripts/build.mjs) inlines numbers imported from another module
// (and folds arithmetic on them), so naming them costs no bytes. Same-module constants and
// strings longer than two characters are not inlined: keep the numbers here.

// ---- defaults of the numeric options (types.ts and README.md document them) ----

/** `batchSize`: events per request. */
export const DEFAULT_BATCH_SIZE = 25;
/** `batchTimeout` (ms): the longest a queued event waits for its batch to fill. */
export const DEFAULT_BATCH_TIMEOUT = 3e4;
/** `retryBaseDelay` (ms): the first retry's delay, before jitter. */
export const DEFAULT_RETRY_BASE_DELAY = 1e3;
/** `retryMaxDelay` (ms): the longest backoff (a longer `Retry-After` still counts). */
export const DEFAULT_RETRY_MAX_DELAY = 6e4;
/** `maxQueueEvents`: events kept queued before the oldest are dropped. */
export const DEFAULT_MAX_QUEUE_EVENTS = 1e3;
/**
 * `maxQueueBytes`: UTF-8 bytes of event JSON kept queued (and so in localStorage, which holds
 * about 5 MB per origin, most of it the host's). Not a request limit: see MAX_BODY_BYTES.
 */
export const DEFAULT_MAX_QUEUE_BYTES = 5e5;

// ---- what the server and the browser accept ----

/** Events per request the server accepts: `batchSize` is clamped to it. */
export const MAX_BATCH_EVENTS = 500;
/**
 * Bytes of one request body (500 KB; the server allows 1 MiB). The same number as
 * DEFAULT_MAX_QUEUE_BYTES, but not the same limit: that one bounds what is kept, this one what
 * one request carries.
 */
export const MAX_BODY_BYTES = 5e5;
/** Bytes of one page-exit body: the browser lets keepalive requests in flight carry 64 KiB. */
export const KEEPALIVE_BODY_BYTES = 64e3;
/** Keys of a batch context the server accepts. */
export const MAX_CONTEXT_KEYS = 32;
/** Context strings the client makes stay far below the server's 4096-character limit. */
export const MAX_CONTEXT_STRING = 1024;
/** The server refuses a `demoContentId` over 256 characters. */
export const MAX_CONTENT_ID = 256;
/** Longest delay setTimeout takes (2^31 − 1 ms): a longer one fires at once. */
export const MAX_DELAY = 2147483647;
/** Milliseconds in a second (`Retry-After` counts seconds). */
export const SECOND = 1e3;

// ---- localStorage ----

/** Writes of the queue are coalesced: at most one this often (ms), plus one at page exit. */
export const SAVE_DELAY = SECOND;
/** A stored queue untouched this long (ms) belongs to an ended page load and may be adopted. */
export const STALE_AFTER = 3e5;
/** Characters of a session id (a UUID): the end of every localStorage key the client writes. */
export const SESSION_ID_LENGTH = 36;
/**
 * Where a stored entry's heartbeat starts and how long it is: after `{"t":`, 13 digits of
 * epoch ms (2001 to 2286). Only storedHeartbeat (core.ts, beside saveNow, which writes the
 * entry) uses them.
 */
export const HEARTBEAT_START = 5;
export const HEARTBEAT_DIGITS = 13;

