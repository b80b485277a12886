// Transcripts: the conversation as a text file, either what the customer saw (their
// messages and the replies) or everything (internal comments and events, marked).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn, openConversationById } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee']]);

async function transcript(page, what) {
  await page.click('#conv-head [data-conv-action="transcript"]');
  await page.selectOption('#dialog select[name="what"]', what);
  const [file] = await Promise.all([
    page.waitForEvent('download'),
    page.click('#dialog button[type="submit"]'),
  ]);
  return { name: file.suggestedFilename(), text: await readFile(await file.path(), 'utf8') };
}

test('a transcript holds what the customer saw, or everything with the internal notes marked', async () => {
  const { hub, browser, ann } = S;
  const marie = await api(hub, 'POST', '/api/widget/session', undefined, { name: 'Marie Curie', email: 'marie@example.com' });
  const m = (await api(hub, 'POST', '/api/widget/messages', marie.token, { text: 'My lamp arrived broken\nthe shade is cracked' })).message;
  const conv = m.conversation_id;
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, ann.token, { text: 'Sorry! A new one is on its way.' });
  await api(hub, 'POST', `/api/conversations/${conv}/comments`, ann.token, { text: 'Refund approved by finance' });
  await api(hub, 'POST', `/api/conversations/${conv}/end-session`, ann.token, { reason: 'replacement sent' });

  const page = await newPage(browser);
  await signIn(page, hub, ann.token);
  await openConversationById(page, conv);
  await page.locator('#timeline .tl-event[data-kind="session.ended"]').waitFor();

  const seen = await transcript(page, 'customer');
  assert.match(seen.name, /^conversation-marie-curie-\d{4}-\d\d-\d\d\.txt$/);
  const lines = seen.text.split('\n');
  assert.equal(lines[0], 'Conversation with Marie Curie <marie@example.com>');
  assert.match(seen.text, /\] Marie Curie: My lamp arrived broken\n {4}the shade is cracked\n/);
  assert.match(seen.text, /\] Ann Lee: Sorry! A new one is on its way\.\n/);
  assert.doesNotMatch(seen.text, /Refund approved/, 'no internal comment in what the customer saw');
  assert.doesNotMatch(seen.text, /ended the messaging session/);

  const all = await transcript(page, 'full');
  assert.match(all.text, /\] \(internal comment\) Ann Lee: Refund approved by finance\n/);
  assert.match(all.text, /\] — Ann Lee ended the messaging session \(replacement sent\)\n/);
  assert.doesNotMatch(all.text, /\bYou\b/, 'names, never "You": the file outlives the console');
  assert.match(all.text, /\[\d{4}-\d\d-\d\d \d\d:\d\d UTC\]/);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});
