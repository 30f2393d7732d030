// Debian's uBlock Origin (package webext-ublock-origin-firefox): where it is, and the filter
// lists it enables by default (assets.json: every filter list not marked "off"), read from the
// files it ships, as the extension reads them on first start.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const UBLOCK_DIR = process.env.UBLOCK_DIR || '/usr/share/mozilla/extensions/{ec8030f7-c20a-464f-9b0e-13a3a9e97384}/uBlock0@raymondhill.net';

interface Asset {
  content?: string;
  off?: boolean;
  contentURL: string | string[];
}

/** The default filter lists' names and texts; throws if the package is not installed. */
export function defaultLists(): { name: string; text: string }[] {
  const manifest = join(UBLOCK_DIR, 'assets', 'assets.json');
  if (!existsSync(manifest)) throw new Error(`${manifest} not found: apt-get install webext-ublock-origin-firefox`);
  const assets = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, Asset>;
  return Object.entries(assets)
    .filter(([, asset]) => asset.content === 'filters' && !asset.off)
    .map(([name, asset]) => {
      const local = [asset.contentURL].flat().find((url) => url.startsWith('assets/'));
      if (!local) throw new Error(`uBlock Origin ships no copy of its default list ${name}`);
      return { name, text: readFileSync(join(UBLOCK_DIR, local), 'utf8') };
    });
}

/** The extension's version (manifest.json). */
export const ublockVersion = (): string => (JSON.parse(readFileSync(join(UBLOCK_DIR, 'manifest.json'), 'utf8')) as { version: string }).version;
