// Numbers and names the tracker uses in several places. A module of their own: the build
// (esbuild with minifySyntax, scripts/build.mjs) inlines constants imported from another module,
// so naming them costs no bytes.

/** A stored queue untouched this long (ms) belongs to an ended page load and may be adopted. */
export const STALE_AFTER = 3e5;
/** Longest delay setTimeout takes (2^31 − 1 ms): a longer one fires at once. */
export const MAX_DELAY = 2147483647;
/** `Request.prototype` has it where `fetch` takes `keepalive` (Firefox from 133). */
export const KEEPALIVE = 'keepalive';
