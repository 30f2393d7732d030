// Automatic page views: a ContentPageLoad per page and per SPA navigation. Its own module,
// reached only through the exported `pageViews`, so apps that do not use it do not bundle it.
import { MAX_CONTENT_ID } from './constants';
import { pagePath, trackEvent } from './core';

let lastPath: string | undefined;
let installed = false;

/** Tracks a page view unless the path is the one just tracked (routers often push, then replace). */
function trackPageView(): void {
  try {
    const path = pagePath();
    if (path !== lastPath) {
      lastPath = path;
      // a path is ASCII (percent-encoded), so cutting it never splits a character
      trackEvent('ContentPageLoad', undefined, path.slice(0, MAX_CONTENT_ID));
    }
  } catch {
    // trackEvent reports its own errors; nothing here may break the host's navigation
  }
}

/**
 * Pass as `autoPageViews: pageViews` to `initializeAnalytics`. Tracks the current page, then
 * every `history.pushState`, `replaceState` to a new path, `popstate` and (with `hashRouting`)
 * hash change. Without a browser (server-side rendering) it does nothing.
 */
export function pageViews(): void {
  if (!globalThis.document) return;
  if (!installed) {
    installed = true;
    // Wrap what is on `history` now: a router that patched it before us is called through,
    // and one that patches it later calls through to us.
    for (const method of ['pushState', 'replaceState'] as const) {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the caller's `this` below
      const original = history[method];
      history[method] = function (this: History, ...args: Parameters<History['pushState']>): void {
        original.apply(this, args);
        trackPageView();
      };
    }
    window.addEventListener('popstate', trackPageView);
    window.addEventListener('hashchange', trackPageView);
  }
  trackPageView();
}
