// A collector in front of `chalice local` for the delivery tests: it forwards POST /events and
// passes the API's answer back, but can drop chosen events while still answering 200 (a
// collector that loses what it acknowledged), or be down (503 or a reset connection).
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { freePort, REPO_ROOT } from './helpers';

export type CollectorMode = 'up' | '503' | 'reset';

export interface Collector {
  url: string;
  /** How the collector answers from now on. */
  mode: CollectorMode;
  /** Events to drop while answering 200: session id → seq numbers. */
  drop: Map<string, Set<number>>;
  /**
   * Requests answered, by how; `beaconEventsLost`: events of page-exit beacons (Chromium sends
   * them with `Sec-Fetch-Mode: no-cors`, fetch with `cors`) refused or reset, which no one resends.
   */
  counts: Record<'forwarded' | 'refused' | 'reset' | 'dropped' | 'beaconEventsLost', number>;
  close(): Promise<void>;
}

const CORS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Retry-After' };

interface Batch {
  events: Array<{ sessionId?: unknown; seq?: unknown }>;
}

export async function startCollector(api: string): Promise<Collector> {
  const port = await freePort();
  const collector: Collector = {
    url: `http://127.0.0.1:${port}`,
    mode: 'up',
    drop: new Map(),
    counts: { forwarded: 0, refused: 0, reset: 0, dropped: 0, beaconEventsLost: 0 },
    close: () => Promise.resolve(),
  };
  const answer = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...CORS, ...extra });
    res.end(JSON.stringify(body));
  };
  const forward = async (req: IncomingMessage, res: ServerResponse, text: string): Promise<void> => {
    if (collector.mode !== 'up' && req.headers['sec-fetch-mode'] === 'no-cors') {
      try {
        collector.counts.beaconEventsLost += (JSON.parse(text) as Batch).events.length;
      } catch {
        // not a batch
      }
    }
    if (collector.mode === 'reset') {
      collector.counts.reset++;
      req.socket.destroy();
      return;
    }
    if (collector.mode === '503') {
      collector.counts.refused++;
      answer(res, 503, { message: 'down for the test' }, { 'retry-after': '0' });
      return;
    }
    let body = text;
    try {
      const batch = JSON.parse(text) as Batch;
      const kept = batch.events.filter((event) => !collector.drop.get(String(event.sessionId))?.has(Number(event.seq)));
      collector.counts.dropped += batch.events.length - kept.length;
      if (!kept.length) {
        answer(res, 200, { accepted: 0, rejected: [] });
        return;
      }
      body = JSON.stringify({ ...batch, events: kept });
    } catch {
      // not a batch: the API says what is wrong with it
    }
    collector.counts.forwarded++;
    const response = await fetch(`${api}/events`, {
      method: 'POST',
      body,
      headers: { 'content-type': req.headers['content-type'] ?? 'text/plain', 'user-agent': req.headers['user-agent'] ?? '' },
    });
    const extra: Record<string, string> = {};
    const retryAfter = response.headers.get('retry-after');
    if (retryAfter) extra['retry-after'] = retryAfter;
    answer(res, response.status, await response.json(), extra);
  };
  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (piece: string) => (text += piece));
    req.on('end', () => {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { ...CORS, 'access-control-allow-methods': 'POST, OPTIONS', 'access-control-allow-headers': 'Content-Type' });
        res.end();
      } else if (req.method === 'POST' && req.url === '/events') {
        forward(req, res, text).catch(() => answer(res, 502, { message: 'the API did not answer' }));
      } else answer(res, 404, { message: 'not found' });
    });
  });
  await new Promise<void>((ready) => server.listen(port, '127.0.0.1', ready));
  collector.close = () =>
    new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    });
  return collector;
}

/** What the report in --json says: the keys the tests read. */
export interface DeliveryJson {
  sessions: number;
  received: number;
  gaps: number;
  gapsInside: number;
  gapsAtEnd: number;
  duplicates: number;
  rate: number | null;
  days: Array<{ gapRuns: Array<{ sessionId: string; first: number; last: number; where: 'inside' | 'end' }> }>;
}

/** `python -m exporter delivery --json` over the days from `since` to now (UTC). */
export function deliveryReport(dataDir: string, since: Date): DeliveryJson {
  const day = (d: Date): string => d.toISOString().slice(0, 10);
  const out = execFileSync(
    join(REPO_ROOT, '.venv', 'bin', 'python'),
    ['-m', 'exporter', 'delivery', '--date', day(since), '--to-date', day(new Date()), '--source', dataDir, '--json'],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  return JSON.parse(out) as DeliveryJson;
}
