// The inbox as agents live it: counts that stay live on the admin screens, timeline
// sentences (who reopened a conversation), ended sessions (reopen, close), customer names
// in the activities, notifications that follow the messages (help requests handled,
// assignments by others, holds over), lost races explained, composer hints, @words that
// mention nobody, holds until further notice, who answered, and the keyboard.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn, folder, openRow, messageCard } from './lib/pages.js';

const S = suite([['bob', 'Bob Stone'], ['sue', 'Sue Chen', 'supervisor']]);

let bobPage;
let suePage;

async function customerSays(text, name = 'Dana Scully', token = null) {
  const s = token ? { token } : await api(S.hub, 'POST', '/api/widget/session', undefined, { name });
  const r = await api(S.hub, 'POST', '/api/widget/messages', s.token, { text });
  return { ...s, message: r.message };
}

const act = (token, id, action, body = {}) => api(S.hub, 'POST', `/api/messages/${id}/${action}`, token, body);
const countIs = (page, key, n) => page.waitForFunction(
  ([k, v]) => document.querySelector(`#folders a[data-folder="${k}"] .count`)?.textContent === v, [key, String(n)],
);

test('the sidebar counts stay live on the Agents and Assistants screens', async () => {
  const { hub, browser, bob } = S;
  const admin = await newPage(browser);
  await signIn(admin, hub, ADMIN_TOKEN);
  await countIs(admin, 'pending', 0);
  await admin.locator('#nav-agents').click();
  await admin.locator('#admin-pane h1', { hasText: 'Agents' }).waitFor();
  const c = await customerSays('Is the walnut lamp back in stock?');
  await countIs(admin, 'pending', 1);

  await admin.locator('#nav-assistants').click();
  await admin.locator('#admin-pane h1', { hasText: 'Assistants' }).waitFor();
  await act(bob.token, c.message.id, 'assign');
  await countIs(admin, 'pending', 0);
  await act(bob.token, c.message.id, 'request-help', { question: 'When is the restock?' });
  await countIs(admin, 'help_requests', 1);
  await act(ADMIN_TOKEN, c.message.id, 'assign');
  await act(ADMIN_TOKEN, c.message.id, 'answer-help', { answer: 'Next Monday.' });
  await countIs(admin, 'help_requests', 0);
  assert.deepEqual(realProblems(admin), []);
  await admin.context().close();
});

test('who reopened a conversation: an agent, or a new customer message; activities name the customer', async () => {
  const { hub, browser, bob, sue } = S;
  const c = await customerSays('My order #5521 never arrived.');
  const convId = c.message.conversation_id;
  await act(bob.token, c.message.id, 'assign');
  await api(hub, 'POST', `/api/conversations/${convId}/replies`, bob.token, { text: 'Sorry! Resending it today.' });
  await api(hub, 'POST', `/api/conversations/${convId}/close`, bob.token, {});
  await act(bob.token, c.message.id, 'reopen'); // reopens the conversation: by Bob
  await api(hub, 'POST', `/api/conversations/${convId}/close`, bob.token, {});
  await customerSays('Still nothing, sorry to insist.', null, c.token); // reopens it: by the customer

  suePage = await newPage(browser);
  await signIn(suePage, hub, sue.token);
  await suePage.goto(`${hub.url}/#/inbox/pending/c/${convId}`);
  await suePage.locator('#conv-head h2', { hasText: 'Dana Scully' }).waitFor();
  const reopened = suePage.locator('#timeline .tl-event[data-kind="conversation.reopened"]');
  await reopened.nth(1).waitFor();
  assert.deepEqual(await reopened.allTextContents().then((t) => t.map((x) => x.replace(/\d\d:\d\d$/, ''))), [
    'Conversation reopened by Bob Stone',
    'Conversation reopened by a new customer message',
  ]);

  // the activities name the customer as the header does
  await suePage.click('#conv-tab-activities');
  const wrote = suePage.locator('#activities .activity[data-kind="message.created"]');
  await wrote.first().waitFor();
  for (const t of await wrote.allTextContents()) assert.match(t, /^Dana Scully wrote/);
  assert.equal(await suePage.locator('#activities', { hasText: 'Visitor' }).count(), 0);

  // another conversation opens on its timeline, not on the activities
  const other = await customerSays('Do you ship to Norway?', 'Erik Berg');
  await suePage.goto(`${hub.url}/#/inbox/pending/c/${other.message.conversation_id}`);
  await suePage.locator('#conv-head h2', { hasText: 'Erik Berg' }).waitFor();
  await messageCard(suePage, 'ship to Norway').waitFor();
  assert.equal(await suePage.getAttribute('#conv-tab-timeline', 'aria-selected'), 'true');
  assert.equal(await suePage.isVisible('#activities'), false);
});

test('an ended session: Reopen warns, the header says so, Close counts what it archives', async () => {
  const { hub, bob } = S;
  const c = await customerSays('Please cancel my subscription.', 'Noor Haddad');
  const convId = c.message.conversation_id;
  await act(bob.token, c.message.id, 'assign');
  await api(hub, 'POST', `/api/conversations/${convId}/replies`, bob.token, { text: 'Done, it is cancelled.' });
  await api(hub, 'POST', `/api/conversations/${convId}/end-session`, bob.token, { reason: 'resolved' });

  await suePage.goto(`${hub.url}/#/inbox/answered/c/${convId}`);
  await suePage.locator('#conv-head h2', { hasText: 'Noor Haddad' }).waitFor();
  const meta = suePage.locator('#conv-head .conv-meta');
  assert.match(await meta.textContent(), /session ended$/);
  assert.doesNotMatch(await meta.textContent(), /bot o(n|ff)/);

  const card = messageCard(suePage, 'cancel my subscription');
  await card.locator('[data-action="reopen"]').click();
  const dlg = suePage.locator('#dialog');
  await dlg.locator('.dialog-desc', { hasText: 'can no longer be answered in this conversation' }).waitFor();
  await dlg.locator('button[type="submit"]', { hasText: 'Reopen anyway' }).click();
  await card.locator('.badge', { hasText: 'Pending' }).waitFor();

  await suePage.click('[data-conv-action="close"]');
  const desc = await dlg.locator('.dialog-desc').textContent();
  assert.match(desc, /1 waiting customer message .* will be archived/);
  assert.match(desc, /their next message starts a new conversation/);
  assert.doesNotMatch(desc, /reopens it/);
  await dlg.locator('button[type="submit"]').click();
  await card.locator('.badge', { hasText: 'Archived' }).waitFor();
});

test('a help request notice goes once the request is handled; notices never cover the navigation', async () => {
  const { hub, bob } = S;
  await suePage.setViewportSize({ width: 1280, height: 620 });
  await suePage.goto(`${hub.url}/#/inbox/pending`);
  const asked = [];
  for (const text of ['Can I return a used shade?', 'Gift wrap for two lamps?', 'Invoice in my company name?', 'Bulk discount for 40 lamps?']) {
    const c = await customerSays(text, 'Lea Roux');
    await act(bob.token, c.message.id, 'assign');
    await act(bob.token, c.message.id, 'request-help', { question: `What do I say to: ${text}` });
    asked.push(c.message);
  }
  const notices = suePage.locator('.toast', { hasText: 'Bob Stone asked for help' });
  await countIs(suePage, 'help_requests', 4);
  // the three latest stay (the first one's notice made way), with Dismiss all
  await notices.filter({ hasText: 'Bulk discount' }).waitFor();
  await suePage.waitForFunction(() => document.querySelectorAll('.toast').length === 3);
  assert.equal(await notices.filter({ hasText: 'used shade' }).count(), 0);
  assert.equal(await suePage.textContent('#toasts .toasts-clear'), 'Dismiss all (3)');
  // every link of the sidebar in sight still takes the click (nothing lies over it; the
  // sidebar scrolls to the rest)
  const covered = await suePage.evaluate(() => [...document.querySelectorAll('#sidebar a')]
    .filter((a) => a.getClientRects().length)
    .filter((a) => a.getBoundingClientRect().bottom <= innerHeight)
    .filter((a) => {
      const r = a.getBoundingClientRect();
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return !hit || !a.contains(hit);
    })
    .map((a) => a.textContent.trim()));
  assert.deepEqual(covered, []);
  await folder(suePage, 'help_requests').click({ timeout: 2000 });
  await suePage.locator('#list .row', { hasText: 'used shade' }).waitFor();

  // the second is taken by another supervisor, the third answered: their notices go
  await act(ADMIN_TOKEN, asked[1].id, 'assign');
  await suePage.waitForFunction(() => document.querySelectorAll('.toast').length === 2);
  await act(ADMIN_TOKEN, asked[2].id, 'assign');
  await act(ADMIN_TOKEN, asked[2].id, 'answer-help', { answer: 'Yes.' });
  await suePage.waitForFunction(() => document.querySelectorAll('.toast').length === 1);
  assert.equal(await notices.count(), 1);
  assert.equal(await suePage.locator('#toasts .toasts-clear').count(), 0, 'Dismiss all over two or more only');
  await suePage.setViewportSize({ width: 1280, height: 800 });
  await act(ADMIN_TOKEN, asked[0].id, 'assign');
  await act(ADMIN_TOKEN, asked[0].id, 'answer-help', { answer: 'Yes.' });
  for (const m of asked.slice(3)) {
    await act(ADMIN_TOKEN, m.id, 'assign');
    await act(ADMIN_TOKEN, m.id, 'answer-help', { answer: 'Yes.' });
  }
  await suePage.waitForFunction(() => document.querySelectorAll('.toast').length === 0);
});

test('an action that lost a race says what became of the message', async () => {
  const { hub, browser, bob, sue } = S;
  bobPage = await newPage(browser);
  await signIn(bobPage, hub, bob.token);
  const c = await customerSays('Which plug for the UK?', 'Olga Ivanova');
  await bobPage.goto(`${hub.url}/#/inbox/pending/c/${c.message.conversation_id}`);
  const card = messageCard(bobPage, 'plug for the UK');
  await card.locator('[data-action="assign"]').waitFor();
  // Sue takes it between Bob's click and his request reaching the hub
  await bobPage.route('**/api/messages/*/assign', async (route) => {
    await act(sue.token, c.message.id, 'assign');
    await route.continue();
  });
  await card.locator('[data-action="assign"]').click();
  await bobPage.locator('.toast.error', { hasText: 'This is no longer possible: Sue Chen took this message.' }).waitFor();
  await card.locator('.msg-status', { hasText: 'with Sue Chen' }).waitFor();
  await bobPage.unroute('**/api/messages/*/assign');

  // the composer says that replying will not answer what Sue holds
  const hint = bobPage.locator('.composer-hint');
  await hint.filter({ hasText: 'An open message is with Sue Chen: your reply will not answer it.' }).waitFor();
  await act(sue.token, c.message.id, 'unassign');
  await hint.filter({ hasText: 'Replying answers 1 waiting message.' }).waitFor();
  assert.doesNotMatch(await hint.textContent(), /Sue Chen/);
});

test('a comment whose @word mentions nobody gets a note; a real mention does not', async () => {
  await bobPage.click('.composer-tabs [data-mode="comment"]');
  await bobPage.fill('#comment-input', 'Asking @Alice about UK plugs, cc @Sue Chen');
  await bobPage.press('#comment-input', 'Enter');
  await bobPage.locator('#timeline .tl-comment', { hasText: 'about UK plugs' }).waitFor();
  const note = bobPage.locator('.composer-note');
  await note.filter({ hasText: 'No agent named “Alice”' }).waitFor();
  assert.doesNotMatch(await note.textContent(), /Sue/);
  await bobPage.fill('#comment-input', 'Thanks @Sue Chen.');
  await bobPage.press('#comment-input', 'Enter');
  await bobPage.locator('#timeline .tl-comment', { hasText: 'Thanks' }).waitFor();
  assert.equal(await note.isVisible(), false);
  await bobPage.click('.composer-tabs [data-mode="reply"]');
});

test('hold until further notice; told of assignments by others, of a message taken away, of a hold over', async () => {
  const { hub, bob, sue } = S;
  const c = await customerSays('Can you hold my order until I am back?', 'Ines Costa');
  await bobPage.goto(`${hub.url}/#/inbox/pending`);
  await bobPage.locator('#list .row', { hasText: 'hold my order' }).waitFor();
  // Sue assigns it to Bob: he is told
  await act(sue.token, c.message.id, 'assign', { agent_id: bob.id });
  await bobPage.locator('.toast', { hasText: 'Sue Chen assigned you a message from Ines Costa' }).waitFor();

  await bobPage.goto(`${hub.url}/#/inbox/mine/c/${c.message.conversation_id}`);
  const card = messageCard(bobPage, 'hold my order');
  await card.locator('summary[data-action="hold"]').click();
  await card.locator('[data-hold="none"]', { hasText: 'Until further notice' }).click();
  await card.locator('.badge', { hasText: 'On hold' }).waitFor();
  await card.locator('.msg-status', { hasText: 'on hold, no end' }).waitFor();
  const data = await api(hub, 'GET', '/api/inbox?folder=on_hold', bob.token);
  const held = data.items.find((m) => m.id === c.message.id);
  assert.equal(held.status, 'on_hold');
  assert.equal(held.hold_until, null);

  // Sue takes it away from him
  await bobPage.goto(`${hub.url}/#/inbox/pending`);
  await act(sue.token, c.message.id, 'unassign');
  await bobPage.locator('.toast', { hasText: 'Sue Chen took the message from Ines Costa away from you: it is back in Pending' }).waitFor();

  // a hold of his ends: the message is back with him
  await act(bob.token, c.message.id, 'assign');
  await act(bob.token, c.message.id, 'hold', { for_seconds: 1 });
  await bobPage.locator('.toast', { hasText: 'Hold over: the message from Ines Costa is back with you' }).waitFor({ timeout: 15000 });
});

test('answered rows say who answered; the keyboard sends the help dialogs and enters a conversation', async () => {
  const { hub, bob } = S;
  const c = await customerSays('Is there a warranty on the brass lamp?', 'Hugo Weber');
  const convId = c.message.conversation_id;
  await act(bob.token, c.message.id, 'assign');
  await api(hub, 'POST', `/api/conversations/${convId}/replies`, bob.token, { text: 'Two years, parts and labour.' });
  await bobPage.goto(`${hub.url}/#/inbox/answered`);
  const row = bobPage.locator('#list .row', { hasText: 'warranty on the brass' });
  await row.locator('.answered-by', { hasText: 'by Bob Stone' }).waitFor();

  // Enter on a row opens it and puts the focus in the composer
  const next = await customerSays('Does the brass lamp come with a bulb?', null, c.token);
  await bobPage.goto(`${hub.url}/#/inbox/pending`);
  const pendingRow = bobPage.locator('#list .row', { hasText: 'come with a bulb' });
  await pendingRow.focus();
  await bobPage.keyboard.press('Enter');
  await bobPage.waitForFunction(() => document.activeElement?.id === 'reply-input');
  assert.equal(await bobPage.locator('#conv-head h2').textContent(), 'Hugo Weber');

  // Request help: Enter sends the question
  const card = messageCard(bobPage, 'come with a bulb');
  await card.locator('[data-action="assign"]').click();
  await card.locator('[data-action="request-help"]').click();
  await bobPage.locator('#dialog textarea[name="question"]').pressSequentially('Do we include bulbs?');
  await bobPage.keyboard.press('Enter');
  await card.locator('.badge', { hasText: 'Help requested' }).waitFor();
  assert.equal(await bobPage.locator('#dialog').evaluate((d) => d.open), false);

  // Answer help: Ctrl+Enter sends the answer
  await suePage.goto(`${hub.url}/#/inbox/help_requests/c/${convId}/m/${next.message.id}`);
  const sueCard = messageCard(suePage, 'come with a bulb');
  await sueCard.locator('[data-action="assign"]', { hasText: 'Take help request' }).click();
  await sueCard.locator('[data-action="answer-help"]').click();
  await suePage.locator('#dialog textarea[name="answer"]').pressSequentially('Yes, an E27 bulb.');
  await suePage.keyboard.press('Control+Enter');
  await sueCard.locator('.badge', { hasText: 'Help answered' }).waitFor();
  assert.deepEqual(realProblems(bobPage), []);
  assert.deepEqual(realProblems(suePage), []);
});
