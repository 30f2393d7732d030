// Builds dist/: index.js (ESM), index.min.js (ESM, minified), index.d.ts (tsc),
// owned-analytics.iife.js (minified, global `OwnedAnalytics`, for a plain <script> tag).
//
// The properties of the queue entries (interface QueuedEvent in src/core.ts) are renamed to
// short names (esbuild mangleProps): minifiers rename variables but never properties, and the
// source should not have to squeeze its names. A property that the DOM, the JS library or the
// public types (src/types.ts) also name would be renamed there too: refused.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = resolve(root, 'src/index.ts');
const out = resolve(root, 'dist');

/** Property names declared in a block of TypeScript declarations. */
const declaredNames = (text) => [...text.matchAll(/^\s+(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*[:(<]/gm)].map((m) => m[1]);

function entryProperties() {
  const source = readFileSync(resolve(root, 'src/core.ts'), 'utf8');
  const block = /export interface QueuedEvent \{([\s\S]*?)\n\}/.exec(source);
  if (!block) throw new Error('build: interface QueuedEvent not found in src/core.ts');
  const names = declaredNames(block[1]);
  const taken = new Set(declaredNames(readFileSync(resolve(root, 'src/types.ts'), 'utf8')));
  const libDir = resolve(root, 'node_modules/typescript/lib');
  for (const file of readdirSync(libDir)) {
    if (/^lib\..*\.d\.ts$/.test(file)) for (const name of declaredNames(readFileSync(resolve(libDir, file), 'utf8'))) taken.add(name);
  }
  const clashes = names.filter((name) => taken.has(name));
  if (clashes.length) throw new Error(`build: rename these QueuedEvent properties, the DOM or the public API uses them too: ${clashes.join(', ')}`);
  return names;
}

const mangleProps = new RegExp(`^(?:${entryProperties().join('|')})$`);

rmSync(out, { recursive: true, force: true });
const common = { entryPoints: [entry], bundle: true, target: 'es2020', platform: 'browser', logLevel: 'warning', mangleProps, minifySyntax: true };
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
