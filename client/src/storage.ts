// The queue, and its localStorage mirror with adoption of queues left by ended page loads.
//
// Each page load writes only its own key, `<storageKey>:<sessionId>`, as {"t": heartbeat,
// "e": [events]}. Writes are coalesced: one per SAVE_DELAY at most, plus one at page exit, so
// a burst of N events costs one serialisation of the queue, not N. Another page load adopts a
// key whose heartbeat is 0 (handed over at pagehide) or older than STALE_AFTER (a crashed tab).
import { type QueuedEvent, isObject, queued, report, state } from './state';

/** A stored queue untouched this long (ms) belongs to a dead tab and may be adopted. */
const STALE_AFTER = 3e5;
/** localStorage writes are coalesced into one per this many ms (and one at page exit). */
export const SAVE_DELAY = 1e3;
/** What a stored event needs to be sent again; the server checks the rest, event by event. */
const STRING_FIELDS = ['eventId', 'sessionId', 'metricName'];

/** localStorage, if the client may write there now (persisting, consent granted). */
const writableStorage = (): Storage | undefined =>
  state.consentState === 'granted' && state.queueKey ? state.queueStorage : undefined;

/** Drops the oldest events while the queue is over `maxQueueEvents` or `maxQueueBytes`. */
export function boundQueue(): void {
  let dropped = 0;
  const { maxQueueEvents, maxQueueBytes } = state.settings;
  while (state.queue.length > maxQueueEvents || state.queueBytes > maxQueueBytes) {
    // shift() is O(1) in current engines (they move the array's start rather than copy it)
    state.queueBytes -= state.queue.shift()!.utf8Length;
    dropped++;
  }
  if (dropped) {
    state.droppedCount += dropped;
    report(Error(`queue full: dropped ${dropped} oldest events`));
  }
}

/** Removes the events `keep` refuses, keeping `queueBytes` true. */
export function removeEvents(keep: (event: QueuedEvent) => boolean): void {
  state.queue = state.queue.filter((event) => keep(event) || ((state.queueBytes -= event.utf8Length), false));
}

/** Writes the queue within SAVE_DELAY; a burst of events shares one write. */
export function scheduleSave(): void {
  if (!state.saveTimer && writableStorage()) state.saveTimer = setTimeout(() => saveNow(), SAVE_DELAY);
}

/**
 * Writes the queue now, with `heartbeat` as its `t`: 0 hands it over to the next page load.
 * Once handed over it stays so (a visibilitychange after pagehide, or a late answer, must not
 * take it back) until `onPageShow` writes a fresh heartbeat.
 */
export function saveNow(heartbeat = state.storedAt === 0 ? 0 : Date.now()): void {
  clearTimeout(state.saveTimer);
  state.saveTimer = undefined;
  const storage = writableStorage();
  if (!storage) return;
  try {
    checkAdopted(storage);
    if (state.queue.length) {
      const events = state.queue.map((event) => ((event.stored = true), event.serialized));
      storage.setItem(state.queueKey, `{"t":${heartbeat},"e":[${events.join()}]}`);
      state.storedAt = heartbeat;
    } else {
      storage.removeItem(state.queueKey);
      state.storedAt = -1;
    }
  } catch (error) {
    // Quota, private mode: leave no stale copy for another tab to adopt; work in memory.
    forgetEntries(false);
    report(error, 'storage');
  }
}

/**
 * Removes this page load's entry (consent pending, a failed write) or (`all`) every entry under
 * the prefix, those of ended page loads included (consent denied).
 */
export function forgetEntries(all: boolean): void {
  clearTimeout(state.saveTimer);
  state.saveTimer = undefined;
  state.storedAt = -1;
  try {
    const storage = state.queueStorage!;
    for (const key of all ? Object.keys(storage) : [state.queueKey]) {
      if (key.startsWith(state.storagePrefix)) storage.removeItem(key);
    }
  } catch {
    // no storage (persist: false, disabled): nothing stored
  }
}

/**
 * Another page load may have adopted our entry: only possible once our heartbeat is stale (or
 * handed over), so this costs nothing on the hot path. If the entry is gone, the events it held
 * are someone else's now; events tracked since that write are still ours.
 */
export function checkAdopted(storage = writableStorage()): void {
  if (storage && state.storedAt >= 0 && Date.now() - state.storedAt >= STALE_AFTER && storage.getItem(state.queueKey) === null) {
    state.storedAt = -1;
    removeEvents((event) => !event.stored);
  }
}

/**
 * Takes over queues left by page loads that ended (reload, closed or crashed tab). Anyone can
 * write to storage, so each entry is checked: what does not have an event's shape is dropped
 * and reported (once per page load).
 */
export function adoptLeftovers(): void {
  const storage = writableStorage();
  if (!storage) return;
  const adopted: QueuedEvent[] = [];
  const known = new Set(state.queue.map((event) => event.uuid));
  let malformed = 0;
  for (const key of Object.keys(storage)) {
    if (key === state.queueKey || !key.startsWith(state.storagePrefix)) continue;
    let entry: unknown;
    try {
      entry = JSON.parse(storage.getItem(key)!);
    } catch {
      // not JSON: removed below
    }
    const { t: heartbeat, e: events } = isObject(entry) ? entry : {};
    if ((heartbeat as number) > Date.now() - STALE_AFTER) continue; // a live tab's queue
    storage.removeItem(key);
    if (!Array.isArray(events)) malformed++;
    for (const event of Array.isArray(events) ? (events as unknown[]) : []) {
      if (!isObject(event) || !STRING_FIELDS.every((field) => typeof event[field] === 'string') || typeof event.timestamp !== 'number') {
        malformed++;
      } else if (!known.has(event.eventId as string)) {
        known.add(event.eventId as string);
        adopted.push(queued(event.eventId as string, JSON.stringify(event)));
      }
    }
  }
  if (malformed) report(Error(`stored queue: dropped ${malformed} malformed entries`), 'malformed');
  if (adopted.length) {
    for (const event of adopted) state.queueBytes += event.utf8Length;
    state.queue = adopted.concat(state.queue);
    boundQueue();
    scheduleSave();
  }
}
