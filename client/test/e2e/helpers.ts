// End-to-end plumbing: a real `chalice local` (dev stage) on a free port, a static server
// for the test pages, and Debian's headless Chromium driven by playwright-core.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo} from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { chromium, type BrowserContext } from 'playwright-core';

export const CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const REPO_ROOT = resolve(CLIENT_DIR, '..');
const CHALICE = join(REPO_ROOT, '.venv', 'bin', 'chalice');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createNetServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => ok(port));
    });
  });
}

export interface Api {
  port: number;
  dataDir: string;
  url: string;
  stop(): Promise<void>;
  log(): string;
}

export async function startApi(port: number, dataDir: string): Promise<Api> {
  if (!existsSync(CHALICE)) throw new Error(`${CHALICE} not found: create the venv first (make test does)`);
  let out = '';
  const proc: ChildProcess = spawn(
    CHALICE,
    ['local', '--stage', 'dev', '--host', '127.0.0.1', '--port', String(port), '--no-autoreload'],
    { cwd: REPO_ROOT, env: { ...process.env, ANALYTICS_DATA_DIR: dataDir }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    try {
      process.kill(-proc.pid!, 'SIGTERM');
    } catch {
      proc.kill('SIGTERM');
    }
    const t = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 3000);
    await gone;
    clearTimeout(t);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`chalice local exited:\n${out}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`chalice local did not answer /health in 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { port, dataDir, url, stop, log: () => out };
}

/** A file's bytes, or undefined when it went away between listing and reading. */
function readIfPresent(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Every stored record under <dataDir>/raw (plain or gzip, newline-delimited JSON).
 * The server writes each object to a `.tmp-` name and renames it into place, so a
 * listing taken mid-write can name a file that is gone by the time it is read: those
 * are skipped here (the renamed object is read on the next poll), as the server's own
 * listing skips them. */
export function rawRecords(dataDir: string): Array<Record<string, unknown>> {
  const root = join(dataDir, 'raw');
  const out: Array<Record<string, unknown>> = [];
  const walk = (d: string): void => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d)) {
      if (n.startsWith('.tmp-')) continue;
      const p = join(d, n);
      const stat = statSync(p, { throwIfNoEntry: false });
      if (stat === undefined) continue;
      if (stat.isDirectory()) walk(p);
      else {
        let buf = readIfPresent(p);
        if (buf === undefined) continue;
        if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
        for (const line of buf.toString('utf8').split('\n')) if (line.trim()) out.push(JSON.parse(line));
      }
    }
  };
  walk(root);
  return out;
}

export async function waitFor<T>(what: string, f: () => T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.map': 'application/json' };

/** Serves client/dist/ under /dist/ and the given pages, on 127.0.0.1 only. */
/** Answers with one of the test's pages or a file of client/dist/, never cached; false when
 *  `path` is neither (the caller answers it). */
export function answerPageOrDist(pages: Record<string, string>, path: string, res: ServerResponse): boolean {
  if (pages[path] !== undefined) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(pages[path]);
    return true;
  }
  const file = resolve(CLIENT_DIR, '.' + path);
  if (path.startsWith('/dist/') && file.startsWith(join(CLIENT_DIR, 'dist')) && existsSync(file)) {
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
    return true;
  }
  return false;
}

export async function servePages(pages: Record<string, string>): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (!answerPageOrDist(pages, path, res)) res.writeHead(404).end('not found');
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export async function launch(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'oa-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
