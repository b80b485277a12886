// Automation: the admin turns automatic assignment on in Admin → Agents and sets an
// agent's capacity there; a customer's message then goes to that agent, whose console
// tells them and whose timeline says it was assigned automatically. Idle conversations:
// the admin picks a period there, and a conversation the hub closed says why. Agents
// who go offline: with the switch on, what they held goes back to Pending, and the
// timeline says why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn, openWidget, widgetSend, openConversationById, customerWritesFirst } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee']]);

test('the admin turns automatic assignment on and sets a capacity; the next customer goes to Ann', async () => {
  const { hub, browser, ann } = S;
  const admin = await newPage(browser);
  await signIn(admin, hub, ADMIN_TOKEN);
  await admin.locator('#nav-agents').click();
  const box = admin.locator('#routing-auto');
  await admin.locator('#routing-auto:not([disabled])').waitFor();
  assert.equal(await box.isChecked(), false);
  await admin.locator('#routing', { hasText: 'messages wait in Pending' }).waitFor();

  // Ann's capacity: 2 conversations at once.
  const row = admin.locator('#agents-list .agent-item', { hasText: 'Ann Lee' });
  await row.locator('.agent-capacity', { hasText: 'No limit' }).waitFor();
  // (the admin, online here, has none: the hub does not give admins conversations)
  await admin.locator('#agents-list .agent-item', { hasText: '(you)' })
    .locator('.agent-capacity', { hasText: 'Not assigned automatically' }).waitFor();
  await row.locator('[data-action="capacity"]').click();
  await admin.fill('#agent-capacity-input', '-1');
  await admin.click('[data-action="capacity-save"]');
  await row.locator('.form-error', { hasText: 'whole number' }).waitFor();
  await admin.fill('#agent-capacity-input', '2');
  await admin.press('#agent-capacity-input', 'Enter');
  await row.locator('.agent-capacity', { hasText: 'Up to 2 conversations' }).waitFor();
  const listed = await api(hub, 'GET', '/api/agents', ann.token);
  assert.equal(listed.items.find((a) => a.id === ann.id).capacity, 2);
  // Her channels: a blank name is refused by the hub, then "web" and back to all.
  await row.locator('.agent-channels', { hasText: 'All channels' }).waitFor();
  await row.locator('[data-action="channels"]').click();
  await admin.fill('#agent-channels-input', 'web, fr');
  await admin.press('#agent-channels-input', 'Enter');
  await row.locator('.agent-channels', { hasText: 'Channels: web, fr' }).waitFor();
  assert.deepEqual((await api(hub, 'GET', '/api/agents', ann.token)).items.find((a) => a.id === ann.id).channels, ['web', 'fr']);
  await row.locator('[data-action="channels"]').click();
  assert.equal(await admin.inputValue('#agent-channels-input'), 'web, fr');
  await admin.fill('#agent-channels-input', '');
  await admin.click('[data-action="channels-save"]');
  await row.locator('.agent-channels', { hasText: 'All channels' }).waitFor();
  assert.equal((await api(hub, 'GET', '/api/agents', ann.token)).items.find((a) => a.id === ann.id).channels, undefined);

  await box.check();
  await admin.locator('#routing', { hasText: 'gives each waiting customer message' }).waitFor();
  assert.deepEqual(await api(hub, 'GET', '/api/automation', ann.token), { auto_assign: true, reassign_offline: false, auto_close_seconds: null });
  await admin.click('#folders a[data-folder="pending"]');
  // (the admin, online, takes none; Ann is not online yet: Pending says why it waits)
  await admin.locator('#list-note', { hasText: 'The hub assigns these to online agents as they arrive; nobody who takes conversations is online now' }).waitFor();
  await admin.locator('#nav-agents').click();
  await admin.locator('#routing-auto:checked').waitFor();

  // Ann is online; a customer writes: the message is hers, and she is told.
  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  // Pending says that the hub hands its messages out
  await annPage.locator('#list-note:not([hidden])', { hasText: /^The hub assigns these to online agents as they arrive\.$/ }).waitFor();
  const customer = await newPage(browser);
  await openWidget(customer, hub);
  await widgetSend(customer, 'My parcel never came');
  await annPage.locator('.toast', { hasText: 'New for you: a message from' }).waitFor();
  const mine = await api(hub, 'GET', '/api/inbox?folder=mine', ann.token);
  assert.equal(mine.items.length, 1);
  assert.equal(mine.items[0].text, 'My parcel never came');
  // the team list says how full Ann is, in conversations of her capacity
  await admin.locator('#team .team-item', { hasText: 'Ann Lee' }).locator('.team-load[title^="1 conversation of 2"]', { hasText: '1/2' }).waitFor();
  await openConversationById(annPage, mine.items[0].conversation_id);
  await annPage.locator('#timeline .tl-event', { hasText: 'The message was assigned automatically to you' }).waitFor();

  // Turned off again from the same switch: Ann's Pending stops saying so at once.
  await annPage.click('#folders a[data-folder="pending"]');
  await annPage.locator('#list-note:not([hidden])').waitFor();
  await box.uncheck();
  await annPage.locator('#list-note').waitFor({ state: 'hidden' });
  await openConversationById(annPage, mine.items[0].conversation_id);
  await admin.locator('#routing', { hasText: 'messages wait in Pending' }).waitFor();
  assert.deepEqual(await api(hub, 'GET', '/api/automation', ann.token), { auto_assign: false, reassign_offline: false, auto_close_seconds: null });
  await admin.click('#folders a[data-folder="pending"]');
  await admin.locator('#list-title', { hasText: 'Pending' }).waitFor();
  await admin.locator('#list-note').waitFor({ state: 'hidden' });
  await admin.locator('#nav-agents').click();

  // Idle conversations: a period chosen from the list, then back to never.
  await admin.locator('#routing', { hasText: 'conversations stay open until someone closes them' }).waitFor();
  await admin.selectOption('#auto-close', { label: 'after 1 day' });
  await admin.locator('#routing', { hasText: 'once nobody has written in it for 1 day' }).waitFor();
  assert.deepEqual(await api(hub, 'GET', '/api/automation', ann.token), { auto_assign: false, reassign_offline: false, auto_close_seconds: 86400 });
  await admin.selectOption('#auto-close', { label: 'never' });
  await admin.locator('#routing', { hasText: 'conversations stay open until someone closes them' }).waitFor();
  assert.equal((await api(hub, 'GET', '/api/automation', ann.token)).auto_close_seconds, null);

  // A period set elsewhere (here one second) shows as it is; Ann answered her customer,
  // so the conversation is closed by the hub, and her timeline says why.
  await api(hub, 'POST', `/api/conversations/${mine.items[0].conversation_id}/replies`, ann.token, { text: 'It is on its way.' });
  await api(hub, 'PATCH', '/api/automation', ADMIN_TOKEN, { auto_close_seconds: 1 });
  await annPage.locator('#timeline .tl-event', { hasText: 'The hub closed the conversation — notes: “Closed automatically after 1 second without activity”' }).waitFor();
  // the admin's panel heard it at once (the hub's `automation` signal), and keeps it
  await admin.locator('#auto-close option:checked', { hasText: 'after 1 second' }).waitFor({ state: 'attached' });
  await admin.reload();
  await admin.locator('#auto-close option:checked', { hasText: 'after 1 second' }).waitFor({ state: 'attached' });

  for (const p of [admin, annPage, customer]) {
    assert.deepEqual(realProblems(p), []);
    await p.context().close();
  }
});

test('with "hand back" on, what an agent held goes back to Pending when they go offline', async () => {
  const { hub, browser, ann } = S;
  await api(hub, 'PATCH', '/api/automation', ADMIN_TOKEN, { auto_close_seconds: null });
  const admin = await newPage(browser);
  await signIn(admin, hub, ADMIN_TOKEN);
  await admin.locator('#nav-agents').click();
  await admin.locator('#routing', { hasText: 'an agent who goes offline keeps what they hold' }).waitFor();
  await admin.locator('#reassign-offline:not([disabled])').check();
  await admin.locator('#routing', { hasText: 'the messages in their Mine go back to Pending' }).waitFor();
  assert.deepEqual(await api(hub, 'GET', '/api/automation', ann.token), { auto_assign: false, reassign_offline: true, auto_close_seconds: null });

  // Ann, online, takes a customer's message, then closes her console.
  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  const customer = await newPage(browser);
  const convId = await customerWritesFirst(customer, hub, ann.token, 'Are you open on Sundays?');
  const all = await api(hub, 'GET', '/api/inbox?folder=all', ann.token);
  const msg = all.items.find((m) => m.text === 'Are you open on Sundays?');
  const taken = await api(hub, 'POST', `/api/messages/${msg.id}/assign`, ann.token, {});
  assert.equal(taken.message.assignee, ann.id);
  await openConversationById(admin, convId);
  await admin.locator('#timeline .tl-event', { hasText: 'Ann Lee took the message' }).waitFor();
  await annPage.context().close();
  await admin.locator('#timeline .tl-event', { hasText: 'went back to Pending: its agent went offline' }).waitFor();
  const back = await api(hub, 'GET', '/api/inbox?folder=pending', ADMIN_TOKEN);
  assert.ok(back.items.some((m) => m.id === msg.id && m.assignee === null), JSON.stringify(back.items));

  await admin.locator('#nav-agents').click();
  await admin.locator('#reassign-offline:not([disabled])').uncheck();
  await admin.locator('#routing', { hasText: 'an agent who goes offline keeps what they hold' }).waitFor();
  for (const p of [admin, customer]) {
    assert.deepEqual(realProblems(p), []);
    await p.context().close();
  }
});
