// A supervisor's tools: handing a conversation over (its owner), a teammate created while
// the consoles are open, notices that name the customer, and a pile of notices.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent, api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, shot, realProblems } from './lib/browser.js';
import { signIn, openRow, openStats } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee'], ['sue', 'Sue Chen', 'supervisor']]);

async function customerSays(name, text) {
  const s = await api(S.hub, 'POST', '/api/widget/session', undefined, { name });
  const r = await api(S.hub, 'POST', '/api/widget/messages', s.token, { text });
  return { ...s, message: r.message, conv: r.message.conversation_id };
}

const owner = async (conv) => (await api(S.hub, 'GET', `/api/conversations/${conv}`, ADMIN_TOKEN)).conversation.owner;

test('an agent takes a conversation nobody owns; a supervisor gives it to a teammate created meanwhile, who is told', async () => {
  const { hub, browser, ann, sue } = S;
  const c = await customerSays('Marie Curie', 'My order never arrived');
  const annPage = await newPage(browser);
  const suePage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  await signIn(suePage, hub, sue.token);

  // Ann takes it (no dialog: it is hers)
  await openRow(annPage, 'My order never arrived');
  await annPage.click('[data-conv-action="owner"]', { timeout: 5000 });
  await annPage.locator('#conv-head .conv-meta', { hasText: 'owner: Ann Lee' }).waitFor();
  assert.equal(await owner(c.conv), ann.id);
  // hers now: she may hand it over, not take it again
  assert.equal(await annPage.textContent('[data-conv-action="owner"]'), 'Hand over…');

  // a teammate created after both consoles started is offered at once
  const tom = await createAgent(hub, 'Tom Baker', 'agent');
  await openRow(suePage, 'My order never arrived');
  await suePage.locator('#conv-head .conv-meta', { hasText: 'owner: Ann Lee' }).waitFor();
  await suePage.click('[data-conv-action="owner"]');
  const select = suePage.locator('#dialog select[name="agent_id"]');
  await select.waitFor();
  assert.equal(await select.inputValue(), '', 'nobody chosen in advance');
  const offered = await select.locator('option').allTextContents();
  assert.ok(offered.some((o) => o.startsWith('Tom Baker')), offered.join(' | '));
  assert.ok(!offered.some((o) => o.startsWith('Ann Lee')), 'not the owner herself');
  // giving it to nobody is refused in words
  await suePage.click('#dialog button[type="submit"]');
  await suePage.locator('#dialog .form-error', { hasText: 'Teammate' }).waitFor();

  // Tom signs in, then Sue gives him the conversation: his console says so, with the customer's name
  const tomPage = await newPage(browser);
  await signIn(tomPage, hub, tom.token);
  await select.selectOption(tom.id);
  await suePage.click('#dialog button[type="submit"]');
  await suePage.locator('#conv-head .conv-meta', { hasText: 'owner: Tom Baker' }).waitFor();
  await annPage.locator('#conv-head .conv-meta', { hasText: 'owner: Tom Baker' }).waitFor();
  assert.equal(await annPage.locator('[data-conv-action="owner"]').count(), 0, 'no longer hers to give');
  await tomPage.locator('#toasts .toast', { hasText: 'Sue Chen gave you the conversation with Marie Curie' }).waitFor();
  await annPage.locator('#timeline .tl-event', { hasText: 'Tom Baker' }).first().waitFor();
  assert.equal(await owner(c.conv), tom.id);

  // and the customer writing back is now Tom's notice
  await api(hub, 'POST', '/api/widget/messages', c.token, { text: 'Any news?' });
  await tomPage.locator('#toasts .toast', { hasText: 'Marie Curie wrote back in your conversation' }).waitFor();
  for (const p of [annPage, suePage, tomPage]) {
    assert.deepEqual(realProblems(p), []);
    await p.context().close();
  }
});

test('a notice names the customer of a conversation this console never opened, and a pile of notices can be dismissed at once', async () => {
  const { hub, browser, ann, sue } = S;
  const suePage = await newPage(browser);
  await signIn(suePage, hub, sue.token);
  // a folder with none of these customers in sight
  await suePage.click('#folders a[data-folder="help_requests"]');
  const asks = [];
  for (const [name, text] of [['Léa Roux', 'Refund for order 1'], ['Omar Haddad', 'Refund for order 2'], ['Ines Sousa', 'Refund for order 3']]) {
    const c = await customerSays(name, text);
    await api(hub, 'POST', `/api/messages/${c.message.id}/assign`, ann.token, {});
    await api(hub, 'POST', `/api/messages/${c.message.id}/request-help`, ann.token, { question: `May I refund ${name}?` });
    asks.push(name);
  }
  for (const name of asks) {
    await suePage.locator('#toasts .toast', { hasText: `Ann Lee asked for help with ${name}’s message` }).waitFor();
  }
  assert.equal(await suePage.locator('#toasts .toast', { hasText: 'Visitor' }).count(), 0);
  // the team list says who has what (its workload, an extension)
  await suePage.locator(`#team [data-agent-id="${ann.id}"] .team-load[title="0 assigned, 0 on hold, 3 help requests open"]`).waitFor();
  await api(hub, 'POST', `/api/messages/${(await customerSays('Zoe', 'Hello?')).message.id}/assign`, sue.token, { agent_id: ann.id });
  await suePage.locator(`#team [data-agent-id="${ann.id}"] .team-load`, { hasText: /^1$/ }).waitFor();
  // a teammate created with a capacity shows how full she is, in conversations
  const cleo = await api(hub, 'POST', '/api/agents', ADMIN_TOKEN, { name: 'Cleo Diaz', role: 'agent', capacity: 1 });
  await api(hub, 'POST', `/api/messages/${(await customerSays('Yann', 'Bonjour')).message.id}/assign`, sue.token, { agent_id: cleo.id });
  await suePage.locator(`#team [data-agent-id="${cleo.id}"] .team-load.full[title="1 conversation of 1: 1 assigned, 0 on hold, 0 help requests open"]`, { hasText: /^1\/1$/ }).waitFor();
  // Ann has no console open: what she holds says so
  await suePage.click('#folders a[data-folder="all"]');
  await suePage.locator('#list .row', { hasText: 'Hello?' }).locator('.with-offline', { hasText: 'with Ann Lee (offline)' }).waitFor();
  const clear = suePage.locator('#toasts .toasts-clear');
  assert.equal(await clear.textContent(), 'Dismiss all (3)');
  // the list's foot stays above the notices
  const pane = await suePage.locator('#list-pane').evaluate((el) => parseFloat(getComputedStyle(el).paddingBottom));
  assert.ok(pane > 50, `list pane padding ${pane}`);
  await clear.click();
  await suePage.locator('#toasts .toast.sticky').first().waitFor({ state: 'detached' });
  assert.equal(await clear.count(), 0);
  assert.deepEqual(realProblems(suePage), []);
  await suePage.context().close();
});

test('Stats shows the hub\'s figures to any agent and follows them', async () => {
  const { hub, browser, ann } = S;
  const c = await customerSays('Paul Durand', 'Is the shop open on Sunday?');
  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  const stat = await openStats(annPage);
  await stat('conv_open').waitFor();
  const api0 = await api(hub, 'GET', '/api/stats', ann.token);
  assert.equal(await stat('conv_open').textContent(), String(api0.conversations.open));
  assert.equal(await stat('status_pending').textContent(), String(api0.messages.by_status.pending ?? 0));
  assert.equal(await stat('status_help_requested').textContent(), String(api0.messages.by_status.help_requested ?? 0));
  // what waits now: Pending's count, and a link to the conversation waiting longest
  const w0 = (await api(hub, 'GET', '/api/stats?waiting=true', ann.token)).waiting;
  assert.equal(await stat('waiting_pending').textContent(), String(w0.pending.count));
  assert.ok(w0.pending.count >= 1);
  const oldest = annPage.locator('.stat[data-stat="waiting_pending"] .stat-hint');
  assert.match(await oldest.textContent(), /^longest waiting: written \d+ (s|min)( \d+ s)? ago · Open$/);
  assert.equal(await oldest.locator('a').getAttribute('href'), `#/inbox/pending/c/${encodeURIComponent(w0.pending.oldest.conversation_id)}`);
  const helpHint = await annPage.locator('.stat[data-stat="waiting_help"] .stat-hint').textContent();
  if (w0.help_requested.count) assert.match(helpHint, /^longest waiting: written /);
  else assert.equal(helpHint, 'nothing waits');
  // the sidebar still works from here, and its link says where we are
  assert.equal(await annPage.getAttribute('#nav-stats', 'aria-current'), 'page');

  // a reply and a close: first response and resolution get figures on Refresh
  await api(hub, 'POST', `/api/conversations/${c.conv}/replies`, ann.token, { text: 'Yes, 10 to 6.' });
  await api(hub, 'POST', `/api/conversations/${c.conv}/close`, ann.token, { notes: 'answered' });
  await annPage.click('#stats-refresh');
  const api1 = await api(hub, 'GET', '/api/stats', ann.token);
  await annPage.waitForFunction((n) => document.querySelector('.stat[data-stat="conv_closed"] .stat-value')?.textContent === String(n), api1.conversations.closed);
  assert.match(await stat('first_response_p50').textContent(), /^\d+ (s|min)/);
  assert.match(await stat('resolution_p50').textContent(), /^\d+ (s|min)/);
  assert.equal(await stat('status_answered').textContent(), String(api1.messages.by_status.answered));
  // the sidebar's counts follow on this screen too
  await annPage.waitForFunction((n) => document.querySelector('#conv-states a[data-state="closed"] .count')?.textContent === String(n), api1.conversations.closed);
  await shot(annPage, 'console-stats');
  // leaving Stats brings the inbox back
  await annPage.click('#folders a[data-folder="pending"]');
  await annPage.locator('#list-title', { hasText: 'Pending' }).waitFor();
  assert.equal(await annPage.locator('.stat').count(), 0);
  assert.deepEqual(realProblems(annPage), []);
  await annPage.context().close();
});

test('a mention made while I was away waits under Mentions, counted, and leads to its conversation', async () => {
  const { hub, browser, ann, sue } = S;
  const c = await customerSays('Nina Weber', 'The lamp arrived broken');
  // Sue mentions Ann while Ann has no console open
  await api(hub, 'POST', `/api/conversations/${c.conv}/comments`, sue.token, { text: '@Ann Lee can you offer a replacement?' });
  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  const nav = annPage.locator('#mentions-nav a[data-folder="mentions"]');
  await nav.locator('.count', { hasText: /^1$/ }).waitFor();
  await nav.click();
  await annPage.locator('#list-title', { hasText: 'Mentions' }).waitFor();
  const row = annPage.locator('#list .row', { hasText: 'can you offer a replacement' });
  await row.waitFor();
  assert.equal(await row.locator('.row-who').textContent(), 'Sue Chen');
  await row.locator('.meta-text', { hasText: 'in Nina Weber’s conversation' }).waitFor();
  const noneUnread = () => annPage.waitForFunction(() => document.querySelector('#mentions-nav .count')?.textContent === '');
  await noneUnread(); // seen
  await row.click();
  await annPage.locator('#timeline .tl-comment', { hasText: 'can you offer a replacement' }).waitFor();

  // a live one while Ann works elsewhere: counted; on Mentions it shows at once
  await annPage.click('#folders a[data-folder="pending"]');
  await api(hub, 'POST', `/api/conversations/${c.conv}/comments`, sue.token, { text: '@Ann Lee the customer called again' });
  await nav.locator('.count', { hasText: /^1$/ }).waitFor();
  await nav.click();
  await annPage.locator('#list .row', { hasText: 'called again' }).waitFor();
  await api(hub, 'POST', `/api/conversations/${c.conv}/comments`, sue.token, { text: '@Ann Lee and once more' });
  await annPage.locator('#list .row', { hasText: 'once more' }).waitFor();
  assert.equal(await annPage.locator('#list .row').count(), 3);
  await noneUnread();
  // a reload: nothing unread
  await annPage.reload();
  await annPage.waitForSelector('#conn.conn-live');
  await annPage.locator('#list .row', { hasText: 'once more' }).waitFor();
  assert.equal(await nav.locator('.count').textContent(), '');
  assert.deepEqual(realProblems(annPage), []);
  await annPage.context().close();
});

test('a waiting message whose session ended says so in the inbox, live', async () => {
  const { hub, browser, ann, sue } = S;
  const c = await customerSays('Otto Berg', 'Can I change my delivery slot?');
  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  await annPage.click('#folders a[data-folder="pending"]');
  const row = annPage.locator('#list .row', { hasText: 'change my delivery slot' });
  await row.waitFor();
  assert.equal(await row.locator('.badge.c-ended').count(), 0);
  await api(hub, 'POST', `/api/conversations/${c.conv}/end-session`, sue.token, { reason: 'duplicate' });
  await row.locator('.badge.c-ended', { hasText: 'Session ended' }).waitFor();
  // and after a reload
  await annPage.reload();
  await annPage.waitForSelector('#conn.conn-live');
  await row.locator('.badge.c-ended', { hasText: 'Session ended' }).waitFor();
  assert.deepEqual(realProblems(annPage), []);
  await annPage.context().close();
});

test('a conversation list shows everyone\'s, mine, or nobody\'s, and keeps the choice', async () => {
  const { hub, browser, ann, sue } = S;
  const mineConv = await customerSays('Mia Lund', 'Question for my own agent');
  const freeConv = await customerSays('Leo Park', 'Question nobody took yet');
  await api(hub, 'POST', `/api/conversations/${mineConv.conv}/owner`, ann.token, {});
  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  await annPage.click('#conv-states a[data-state="open"]');
  const row = (c) => annPage.locator(`#list .row[data-conversation-id="${c.conv}"]`);
  await row(mineConv).waitFor();
  await row(freeConv).waitFor();
  await annPage.selectOption('#conv-owner', 'mine');
  await row(freeConv).waitFor({ state: 'detached' });
  assert.equal(await row(mineConv).count(), 1);
  assert.ok((await annPage.locator('#list .row').evaluateAll((els) => els.map((e) => e.textContent))).every((t) => !t.includes('No owner')));
  await annPage.selectOption('#conv-owner', 'none');
  await row(freeConv).waitFor();
  assert.equal(await row(mineConv).count(), 0);
  // taken live: it leaves the "No owner" list
  await api(hub, 'POST', `/api/conversations/${freeConv.conv}/owner`, sue.token, { agent_id: ann.id });
  await row(freeConv).waitFor({ state: 'detached' });
  // the choice is kept
  await annPage.reload();
  await annPage.waitForSelector('#conn.conn-live');
  assert.equal(await annPage.inputValue('#conv-owner'), 'none');
  await annPage.selectOption('#conv-owner', 'mine');
  await row(freeConv).waitFor();
  await row(mineConv).waitFor();
  await annPage.selectOption('#conv-owner', 'all');
  assert.deepEqual(realProblems(annPage), []);
  await annPage.context().close();
});
