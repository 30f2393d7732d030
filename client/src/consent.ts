// Consent: what the client may keep and send. `pending` holds events in memory only (nothing
// written to any storage, nothing sent); `denied` keeps nothing and clears what it stored.
import { storeLanding } from './page-context';
import { sendQueued } from './send';
import { report, state, stopBatchTimer } from './state';
import { forgetEntries } from './storage';
import type { ConsentState } from './types';

/**
 * Moves to `next`, doing what the change implies for the queue and for storage. Any value but
 * `granted` and `denied` behaves as `pending` (the safe side).
 */
export function applyConsent(next: ConsentState): void {
  const previous = state.consentState;
  state.consentState = next;
  if (next === 'granted') {
    storeLanding(true);
    if (previous !== 'granted') void sendQueued(); // sends what was held, now
    return;
  }
  // Nothing is sent from now on; granting again sends at once rather than at the next retry.
  stopBatchTimer();
  clearTimeout(state.retryTimer);
  state.retryTimer = undefined;
  // pending: the stored queue moves back to memory. denied: nothing is kept, anywhere.
  forgetEntries(next === 'denied');
  if (next === 'denied') {
    state.queue = [];
    state.queueBytes = 0;
    storeLanding(false);
  }
}

/**
 * Changes the consent state at any time, e.g. from a cookie banner. Before
 * `initializeAnalytics` it sets the state that call starts with (unless its config says otherwise).
 */
export function setConsent(consent: ConsentState): void {
  try {
    applyConsent(consent);
  } catch (error) {
    report(error);
  }
}
