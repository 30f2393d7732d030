// Sending: request bodies, one request at a time, the retry schedule, and the page-exit beacon.
import { batchContext } from './page-context';
import { type QueuedEvent, callHost, report, state, stopBatchTimer } from './state';
import { adoptLeftovers, checkAdopted, removeEvents, saveNow, scheduleSave } from './storage';

/** Bytes per beacon body; the browser's limit is 64 KiB. */
const BEACON_MAX_BYTES = 64e3;
/** Bytes per fetch body; the server allows 1 MiB. */
const BODY_MAX_BYTES = 5e5;

/** The server's answer, as far as the client cares. */
type AnswerBody = { rejected?: { index: number; error: string }[] } | null;

const requestBody = (events: QueuedEvent[]): string =>
  `{"sentAt":${Date.now()},"context":${JSON.stringify(batchContext())},"events":[${events.map((event) => event.serialized).join()}]}`;

/** Splits events into request bodies of at most `maxBytes` bytes and `batchSize` events. */
function splitIntoBodies(events: QueuedEvent[], maxBytes: number): QueuedEvent[][] {
  const bodies: QueuedEvent[][] = [];
  const envelopeBytes = new Blob([requestBody([])]).size;
  let current: QueuedEvent[] = [];
  let bytes = envelopeBytes;
  for (const event of events) {
    if (current.length && (bytes + event.utf8Length >= maxBytes || current.length >= state.settings.batchSize)) {
      bodies.push(current);
      current = [];
      bytes = envelopeBytes;
    }
    current.push(event);
    bytes += event.utf8Length + 1; // and a comma
  }
  if (current.length) bodies.push(current);
  return bodies;
}

const sendingAllowed = (): boolean => !!state.endpointUrl && state.consentState === 'granted';

/** Removes delivered (or finally refused) events from the queue. */
function removeSent(batch: QueuedEvent[]): void {
  const sent = new Set(batch.map((event) => event.uuid));
  removeEvents((event) => !sent.has(event.uuid));
  scheduleSave();
}

/** Sends one batch with `fetch` and applies the answer; never rejects. */
async function deliver(batch: QueuedEvent[], keepalive: boolean): Promise<void> {
  let status = 0;
  let body: AnswerBody = null;
  let retryAfter: string | null = null;
  for (const event of batch) state.inFlight.add(event.uuid);
  try {
    const response = await fetch(state.endpointUrl, { method: 'POST', body: requestBody(batch), keepalive, credentials: 'omit' });
    status = response.status;
    retryAfter = response.headers.get('retry-after');
    body = (await response.json().catch(() => null)) as AnswerBody;
  } catch (error) {
    report(error);
  }
  for (const event of batch) state.inFlight.delete(event.uuid);
  callHost('onSend', { transport: keepalive ? 'keepalive' : 'fetch', events: batch.length, status, body });
  settle(batch, status, body, retryAfter);
}

/** Jittered exponential backoff (50–100 % of base·2^failures, capped), or a longer `Retry-After`. */
export function retryDelay(failures: number, retryAfter: string | null): number {
  const { retryBaseDelay, retryMaxDelay } = state.settings;
  const delay = Math.min(retryMaxDelay, retryBaseDelay * 2 ** failures) * (0.5 + Math.random() / 2);
  const serverDelay = retryAfter ? +retryAfter * 1e3 || Date.parse(retryAfter) - Date.now() : 0;
  return serverDelay > delay ? serverDelay : delay;
}

/**
 * Applies an answer. Network errors, 408, 429 and 5xx may succeed later: retried after
 * `retryDelay`, nothing else is sent meanwhile. Any other answer ends the batch.
 */
function settle(batch: QueuedEvent[], status: number, body: AnswerBody, retryAfter: string | null): void {
  if (!status || status === 408 || status === 429 || status > 499) {
    const delay = retryDelay(state.failures++, retryAfter);
    if (status) report(Error(`HTTP ${status}: retrying in ${Math.round(delay)} ms`));
    if (!state.retryTimer) {
      stopBatchTimer();
      state.retryTimer = setTimeout(() => {
        state.retryTimer = undefined;
        void sendQueued();
      }, delay);
    }
    return;
  }
  state.failures = 0;
  removeSent(batch);
  // Another 4xx would fail again: dropped. A 200 with rejected events: those are dropped, the rest are stored.
  if (status > 299) report(Error(`HTTP ${status}: ${batch.length} events dropped`));
  else if (body?.rejected?.length) report(Error(`${body.rejected.length} events rejected: ${body.rejected[0]!.error}`));
}

/** Sends queued events (all, or only full batches), one request at a time. Never rejects. */
export function sendQueued(all = true): Promise<void> {
  return (state.sending = (state.sending || Promise.resolve()).then(() => sendLoop(all)));
}

async function sendLoop(all: boolean): Promise<void> {
  if (!sendingAllowed() || state.retryTimer) return;
  try {
    checkAdopted();
    const locks = navigator.locks;
    // Two new page loads must not adopt the same leftover queue: the Web Lock serialises them.
    await (locks ? locks.request(state.storagePrefix, adoptLeftovers).catch(adoptLeftovers) : adoptLeftovers());
    stopBatchTimer();
    while (sendingAllowed() && !state.retryTimer && state.queue.length >= (all ? 1 : state.settings.batchSize)) {
      const batch = splitIntoBodies(state.queue.slice(0, state.settings.batchSize), BODY_MAX_BYTES)[0]!;
      await deliver(batch, false);
    }
  } catch (error) {
    report(error);
  }
  armBatchTimer();
}

/** Sends `batchTimeout` ms after the first event waiting. */
export function armBatchTimer(): void {
  if (!state.batchTimer && !state.retryTimer && state.queue.length && sendingAllowed()) {
    state.batchTimer = setTimeout(() => {
      state.batchTimer = undefined;
      void sendQueued();
    }, state.settings.batchTimeout);
  }
}

/** Page exit: queued events leave by sendBeacon (text/plain, no preflight), <= 64 KB each. */
export function onPageExit(event: Event): void {
  try {
    const pagehide = event.type === 'pagehide';
    if (!sendingAllowed() || (!pagehide && document.visibilityState !== 'hidden')) return;
    // While the endpoint is failing the events stay stored for the next page load instead.
    if (!state.failures) {
      const waiting = state.queue.filter((queued) => !state.inFlight.has(queued.uuid));
      for (const batch of splitIntoBodies(waiting, BEACON_MAX_BYTES)) {
        if (navigator.sendBeacon?.(state.endpointUrl, requestBody(batch))) {
          removeSent(batch);
          callHost('onSend', { transport: 'beacon', events: batch.length });
        } else void deliver(batch, true);
      }
    }
    // The page may never run again: write now. At pagehide, hand the queue over (heartbeat 0).
    saveNow(pagehide ? 0 : undefined);
  } catch (error) {
    report(error);
  }
}

/** Back/forward cache restore: the queue may have been adopted meanwhile; take it up again. */
export function onPageShow(): void {
  try {
    saveNow(Date.now()); // drops what another page load adopted; a live heartbeat again
    armBatchTimer();
  } catch (error) {
    report(error);
  }
}
