// Builds dist/: index.js (ESM), index.min.js (ESM, minified), index.d.ts (tsc),
// owned-analytics.iife.js (minified, global `OwnedAnalytics`, for a plain <script> tag).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = resolve(root, 'src/index.ts');
const out = resolve(root, 'dist');
rmSync(out, { recursive: true, force: true });

const common = { entryPoints: [entry], bundle: true, target: 'es2020', platform: 'browser', logLevel: 'warning' };
await build({ ...common, format: 'esm', outfile: resolve(out, 'index.js'), sourcemap: true });
await build({ ...common, format: 'esm', minify: true, outfile: resolve(out, 'index.min.js'), sourcemap: true });
await build({
  ...common,
  format: 'iife',
  globalName: 'OwnedAnalytics',
  minify: true,
  outfile: resolve(out, 'owned-analytics.iife.js'),
  sourcemap: true,
});
execFileSync(
  process.execPath,
  [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', resolve(root, 'tsconfig.build.json')],
  { stdio: 'inherit' },
);
console.log('built dist/: index.js, index.min.js, index.d.ts, owned-analytics.iife.js');
