// Automatic away: an agent who leaves the console open without touching it goes away by
// itself (so the widget stops saying someone is online), and is back online at the first
// key; an away chosen by hand stays. The period is shortened for the test through the
// browser's `hub.console.idleMs`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee']]);

async function presenceOf(id) {
  const agents = await api(S.hub, 'GET', '/api/agents', S.ann.token);
  return agents.items.find((a) => a.id === id).presence;
}

test('an idle console goes away by itself and comes back at the first key; a chosen away stays', async () => {
  const { hub, browser, ann } = S;
  const page = await newPage(browser);
  await page.addInitScript(() => localStorage.setItem('hub.console.idleMs', '1500'));
  await signIn(page, hub, ann.token);
  await page.locator('#presence[data-current="online"]').waitFor();

  // left alone: away, said as idle, and the widget hears nobody is online
  await page.locator('#presence[data-current="away"][data-idle="true"]').waitFor();
  assert.equal(await presenceOf(ann.id), 'away');
  assert.equal((await api(hub, 'GET', '/api/widget/availability')).online, false);

  // a key: online again
  await page.keyboard.press('Shift');
  await page.locator('#presence[data-current="online"][data-idle="false"]').waitFor();
  assert.equal(await presenceOf(ann.id), 'online');

  // away by hand: it stays away through activity, and is not called idle
  await page.click('#presence button[data-status="away"]');
  await page.locator('#presence[data-current="away"][data-idle="false"]').waitFor();
  await page.keyboard.press('Shift');
  await page.mouse.move(30, 30);
  // the hub's answer to something asked after the key: still away
  assert.equal(await presenceOf(ann.id), 'away');
  assert.equal(await page.getAttribute('#presence', 'data-current'), 'away');

  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});
