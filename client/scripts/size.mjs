// Size budgets, measured as an app's bundler would see them: esbuild bundles a tiny app that
// imports from the built dist/index.js (tree-shaking what it does not use), minifies, and the
// result is gzipped (level 9).
//   core:       initializeAnalytics, trackEvent, flush                           <= 2600 B
//               (with what they always carry: page context, which is on by default, the
//               consent option, privacy signals, stored-queue checks, coalesced writes)
//   page views: the same plus pageViews (autoPageViews)                           <= 3300 B
//   everything: the IIFE build (for <script> tags), reported only
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, 'dist/index.js');
const apps = [
  {
    name: 'core',
    limit: 2600,
    code: `import { initializeAnalytics, trackEvent, flush } from ${JSON.stringify(dist)};
      initializeAnalytics({ endpoint: '/events' }); trackEvent('x'); flush();`,
  },
  {
    name: 'with page views',
    limit: 3300,
    code: `import { initializeAnalytics, trackEvent, flush, pageViews } from ${JSON.stringify(dist)};
      initializeAnalytics({ endpoint: '/events', autoPageViews: pageViews }); trackEvent('x'); flush();`,
  },
];

const gzipped = (bytes) => gzipSync(bytes, { level: 9 }).length;
let failed = false;
for (const app of apps) {
  const result = await build({
    stdin: { contents: app.code, resolveDir: root, loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2020',
    platform: 'browser',
    write: false,
  });
  const code = result.outputFiles[0].contents;
  const gz = gzipped(code);
  const verdict = gz > app.limit ? `OVER by ${gz - app.limit}` : 'ok';
  console.log(`size ${app.name}: ${code.length} B minified, ${gz} B min+gzip (budget ${app.limit}) ${verdict}`);
  failed ||= gz > app.limit;
}
const iife = readFileSync(resolve(root, 'dist/owned-analytics.iife.js'));
console.log(`size iife (everything): ${iife.length} B minified, ${gzipped(iife)} B min+gzip`);
if (failed) process.exit(1);
