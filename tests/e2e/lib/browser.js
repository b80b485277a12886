// Headless Chromium through playwright-core (no browser download: the system's chromium).

import { chromium } from 'playwright-core';
import { mkdirSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './hub.js';

export const ARTIFACTS = path.join(ROOT, 'tests/artifacts');

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A new page in its own context (own storage), collecting console errors, page errors
 * and CSP violations in page.problems.
 */
export async function newPage(browser, { viewport = { width: 1280, height: 800 }, isMobile = false } = {}) {
  const context = await browser.newContext({ viewport, isMobile, hasTouch: isMobile, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(10000);
  return page;
}

/** Page problems other than expected network noise (a dropped socket logs an error). */
export function realProblems(page) {
  return page.problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource|net::ERR/.test(p));
}

export async function shot(page, name, { copyTo = null, fullPage = false } = {}) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  if (copyTo) {
    const dest = path.join(ROOT, copyTo);
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(file, dest);
  }
  return file;
}
