// Keyboard shortcuts: j / k walk the list opening each row, r and n go to the reply and
// note boxes, Escape leaves them (the draft stays), ? lists the shortcuts; none fires
// while typing in a field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee']]);

test('j / k walk the queue, r / n open the boxes, Escape leaves them, ? lists the keys', async () => {
  const { hub, browser, ann } = S;
  const convs = [];
  for (const text of ['first question', 'second question', 'third question']) {
    const k = await api(hub, 'POST', '/api/widget/session', undefined, {});
    convs.push((await api(hub, 'POST', '/api/widget/messages', k.token, { text })).message.conversation_id);
  }
  const page = await newPage(browser);
  await signIn(page, hub, ann.token);
  await page.locator('#list a.row').nth(2).waitFor();
  const openConv = () => page.evaluate(() => document.querySelector('#conv-view')?.dataset.id || null);

  // Pending lists newest first: j opens the first row, then the next; k goes back.
  await page.locator('body').press('j');
  await page.waitForFunction((id) => document.querySelector('#conv-view')?.dataset.id === id, convs[2]);
  await page.keyboard.press('j');
  await page.waitForFunction((id) => document.querySelector('#conv-view')?.dataset.id === id, convs[1]);
  await page.keyboard.press('k');
  await page.waitForFunction((id) => document.querySelector('#conv-view')?.dataset.id === id, convs[2]);
  await page.locator('#list a.row.active').waitFor();

  // r: the reply box; typed letters are text, not shortcuts; Escape leaves, the draft stays.
  await page.locator('#conv-view .conv-head h2').waitFor();
  await page.keyboard.press('r');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'reply-input');
  await page.keyboard.type('just a quick check');
  assert.equal(await openConv(), convs[2], 'j and k inside the box are letters');
  await page.keyboard.press('Escape');
  assert.notEqual(await page.evaluate(() => document.activeElement.id), 'reply-input');
  assert.equal(await page.inputValue('#reply-input'), 'just a quick check');
  // n: the note box
  await page.keyboard.press('n');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'comment-input');
  await page.keyboard.press('Escape');

  // ?: the list of shortcuts
  await page.keyboard.press('?');
  await page.locator('#dialog h2', { hasText: 'Keyboard shortcuts' }).waitFor();
  assert.match(await page.locator('#dialog .dialog-desc').textContent(), /j\s+—\s+Open the next row/);
  await page.keyboard.press('Escape');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});
