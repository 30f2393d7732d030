// Size budget: the minified, gzipped ESM bundle of src/index.ts must be <= 2560 bytes.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIMIT = 2560;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const result = await build({
  entryPoints: [resolve(root, 'src/index.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  platform: 'browser',
  write: false,
});
const code = result.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`size: ${code.length} bytes minified, ${gz} bytes min+gzip (budget ${LIMIT})`);
if (gz > LIMIT) {
  console.error(`size: over budget by ${gz - LIMIT} bytes`);
  process.exit(1);
}
