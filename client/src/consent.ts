// setConsent: the consent state at any time, e.g. from a cookie banner. What each state means
// (and the `consent` option, which applies the same way) lives in core.ts (applyConsent).
import { applyConsent, report } from './core';
import type { ConsentState } from './types';

/**
 * Changes the consent state at any time. Before `initializeAnalytics` it sets the state that
 * call starts with (unless its config says otherwise). The way to change it after the first
 * `initializeAnalytics`: a later config's `consent` is ignored.
 */
export function setConsent(consent: ConsentState): void {
  try {
    applyConsent(consent);
  } catch (error) {
    report(error);
  }
}
