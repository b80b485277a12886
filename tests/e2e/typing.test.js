// Typing signals: the console says when the customer types and when a colleague writes a
// reply or a note in the same conversation (so that two agents do not answer at once);
// the widget says when the brand types a reply; each goes when the text arrives or the
// typist stops.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn, openConversationById as openConversation, customerWritesFirst } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee'], ['bob', 'Bob Stone']]);

const W = '#hub-chat-widget';

test('agents see the customer typing and each other writing; the customer sees the reply coming', async () => {
  const { hub, browser, ann, bob } = S;
  const customer = await newPage(browser);
  const convId = await customerWritesFirst(customer, hub, ann.token, 'My parcel is late');

  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  await openConversation(annPage, convId);
  const bobPage = await newPage(browser);
  await signIn(bobPage, hub, bob.token);
  await openConversation(bobPage, convId);

  // The customer types (not sent): both consoles say so.
  await customer.locator(`${W} .hw-input`).pressSequentially('It was due on Mon');
  for (const p of [annPage, bobPage]) {
    await p.locator('.composer-typing:not([hidden])', { hasText: /is typing…$/ }).waitFor();
    // and the list's row of that customer says so
    await p.locator('#list a.row.active .row-typing', { hasText: 'typing…' }).waitFor();
  }
  // The customer empties the box: it goes.
  await customer.fill(`${W} .hw-input`, '');
  for (const p of [annPage, bobPage]) {
    await p.locator('.composer-typing').waitFor({ state: 'hidden' });
    await p.locator('#list .row-typing').waitFor({ state: 'detached' });
  }

  // Ann writes a reply: Bob is warned, the customer sees "Typing…"; Ann sees nothing of herself.
  await annPage.locator('#reply-input').pressSequentially('Let me check with the carrier');
  const warning = bobPage.locator('.composer-typing.others-replying:not([hidden])');
  await warning.waitFor();
  assert.equal(await warning.textContent(), 'Ann Lee is writing a reply…');
  await bobPage.locator('#list a.row.active .row-typing.agent', { hasText: 'Ann Lee replying…' }).waitFor();
  await customer.locator(`${W} .hw-typing:not([hidden])`).waitFor();
  assert.equal(await annPage.locator('.composer-typing').isHidden(), true);

  // She sends: the reply arrives and both signs go.
  await annPage.press('#reply-input', 'Enter');
  await customer.locator(`${W} .hw-in[data-reply-id] .hw-bubble`, { hasText: 'Let me check with the carrier' }).waitFor();
  await customer.locator(`${W} .hw-typing`).waitFor({ state: 'hidden' });
  await warning.waitFor({ state: 'hidden' });

  // Bob writes an internal note: Ann reads it as a note being written; the customer hears nothing.
  await bobPage.click('.composer-tabs .tab[data-mode="comment"]');
  await bobPage.locator('#comment-input').pressSequentially('Carrier is DPD');
  const note = annPage.locator('.composer-typing:not([hidden])');
  await note.waitFor();
  assert.equal(await note.textContent(), 'Bob Stone is writing an internal comment…');
  assert.equal(await note.evaluate((e) => e.classList.contains('others-replying')), false);
  // Bob goes to another page: Ann's console is told he stopped.
  await bobPage.close();
  await annPage.locator('.composer-typing').waitFor({ state: 'hidden' });
  assert.equal(await customer.locator(`${W} .hw-typing`).isHidden(), true);

  assert.deepEqual(realProblems(annPage), []);
  assert.deepEqual(realProblems(customer), []);
  await annPage.context().close();
  await customer.context().close();
});
