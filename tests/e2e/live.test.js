// Live updates survive dropped connections: the console and the widget show
// "reconnecting", resume with `since`, and show every event once; a failed send is
// retried with the same client_id (never duplicated); a hub restart (kill -9) is resumed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, createAgent, api, reportFailures } from './lib/hub.js';
import { launch, newPage, realProblems } from './lib/browser.js';
import { signIn, openWidget, widgetSend, openRow, messageCard } from './lib/pages.js';

let hub;
reportFailures(() => hub);
let browser;
let ana;
let omar;

before(async () => {
  hub = await startHub();
  browser = await launch();
  ana = await createAgent(hub, 'Ana', 'agent');
  omar = await createAgent(hub, 'Omar', 'agent');
});

after(async () => {
  await browser?.close();
  await hub?.stop();
});

/** Routes a page's socket through a switch: `drop()` cuts it, and it stays cut until `restore()`. */
async function socketSwitch(page, pattern) {
  const sw = { blocked: false, hellos: [], current: null };
  await page.routeWebSocket(pattern, (ws) => {
    if (sw.blocked) {
      ws.close({ code: 4000, reason: 'blocked by the test' });
      return;
    }
    const server = ws.connectToServer();
    sw.current = { ws, server };
    ws.onMessage((m) => {
      try {
        const f = JSON.parse(m);
        if (f.type === 'hello') sw.hellos.push(f);
      } catch { /* not JSON */ }
      server.send(m);
    });
    server.onMessage((m) => ws.send(m));
    ws.onClose(() => server.close());
    server.onClose((code, reason) => ws.close({ code, reason }));
  });
  sw.drop = () => {
    sw.blocked = true;
    if (sw.current) {
      sw.current.server.close();
      sw.current.ws.close({ code: 4000, reason: 'dropped by the test' });
      sw.current = null;
    }
  };
  sw.restore = () => { sw.blocked = false; };
  return sw;
}

test('the console resumes with since after a dropped connection: nothing missed, nothing twice', async () => {
  const page = await newPage(browser);
  const sw = await socketSwitch(page, /\/ws\/agent/);
  await signIn(page, hub, ana.token);
  assert.equal(sw.hellos.length, 1);
  assert.equal(sw.hellos[0].since, undefined);

  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const a = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'First: where is my parcel?' });
  await openRow(page, 'where is my parcel');

  sw.drop();
  await page.locator('#conn', { hasText: 'Reconnecting' }).waitFor();
  // while the console is cut off: more messages, and a teammate takes the first one
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Second: tracking says delivered.' });
  await api(hub, 'POST', `/api/messages/${a.message.id}/assign`, omar.token);
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Third: but nothing here.' });
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('#timeline .tl-message', { hasText: 'Third' }).count(), 0);

  sw.restore();
  await page.locator('#conn.conn-live').waitFor({ timeout: 15000 });
  const hello = sw.hellos[sw.hellos.length - 1];
  assert.equal(typeof hello.since, 'number');
  assert.equal(typeof hello.epoch, 'string');

  await messageCard(page, 'Third').waitFor();
  await messageCard(page, 'where is my parcel').locator('.msg-status', { hasText: 'with Omar' }).waitFor();
  for (const t of ['where is my parcel', 'Second', 'Third']) {
    assert.equal(await messageCard(page, t).count(), 1, `"${t}" shown once`);
  }
  assert.equal(await page.locator('#timeline .tl-event', { hasText: 'Omar took' }).count(), 1);
  await page.locator('#list .row', { hasText: 'Third' }).waitFor();
  assert.equal(await page.locator('#list .row', { hasText: 'Second' }).count(), 1);
  await page.waitForFunction(() => document.querySelector('#folders a[data-folder="pending"] .count')?.textContent === '2');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('the widget retries a failed send with the same client_id and resumes replies with since', async () => {
  const agentPage = await newPage(browser);
  await signIn(agentPage, hub, ana.token);
  const widget = await newPage(browser);
  const sw = await socketSwitch(widget, /\/ws\/widget/);
  await openWidget(widget, hub);
  await widgetSend(widget, 'Hello, is the desk lamp in stock?');
  await agentPage.locator('#list .row', { hasText: 'desk lamp in stock' }).waitFor();
  await openRow(agentPage, 'desk lamp in stock');

  sw.drop();
  await widget.locator('#hub-chat-widget .hw-conn', { hasText: 'Reconnecting' }).waitFor();

  // a reply while the widget is cut off
  await agentPage.fill('#reply-input', 'Yes, 12 in stock, shipped tomorrow.');
  await agentPage.press('#reply-input', 'Enter');
  await agentPage.locator('#timeline .tl-reply', { hasText: '12 in stock' }).waitFor();

  // a send whose answer is lost: the hub stores it, the widget never hears back
  const bodies = [];
  let lost = false;
  await widget.route('**/api/widget/messages*', async (route) => {
    // Until the socket has resumed, the widget's history polls fail too, so that the reply
    // can only come with the resumed socket (`since`): a poll let through at restore
    // brought it first, with the socket still waiting out its backoff.
    if (route.request().method() !== 'POST') {
      return sw.blocked || sw.hellos.length < 2 ? route.abort('connectionrefused') : route.continue();
    }
    bodies.push(JSON.parse(route.request().postData()));
    if (!lost) {
      lost = true;
      await route.fetch();
      await route.abort('connectionreset');
      return;
    }
    await route.continue();
  });
  await widget.fill('#hub-chat-widget .hw-input', 'Great, ordering now.');
  await widget.press('#hub-chat-widget .hw-input', 'Enter');
  await widget.locator('#hub-chat-widget .hw-out', { hasText: 'ordering now' }).locator('.hw-meta', { hasText: /· Sent$/ }).waitFor({ timeout: 15000 });
  assert.ok(bodies.length >= 2, `the send was retried: ${JSON.stringify(bodies)} ${JSON.stringify(sw.hellos)}`);
  assert.ok(bodies.every((b) => b.client_id === bodies[0].client_id), 'with the same client_id');
  assert.equal(await widget.locator('#hub-chat-widget .hw-in', { hasText: '12 in stock' }).count(), 0);

  sw.restore();
  await widget.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: '12 in stock' }).waitFor({ timeout: 15000 });
  const hello = sw.hellos[sw.hellos.length - 1];
  assert.equal(typeof hello.since, 'number', JSON.stringify(sw.hellos.map((x) => ({ ...x, token: undefined }))));
  await widget.locator('#hub-chat-widget .hw-conn').waitFor({ state: 'hidden' });

  await messageCard(agentPage, 'ordering now').waitFor();
  assert.equal(await messageCard(agentPage, 'ordering now').count(), 1);
  assert.equal(await widget.locator('#hub-chat-widget .hw-out', { hasText: 'ordering now' }).count(), 1);
  assert.equal(await widget.locator('#hub-chat-widget .hw-in', { hasText: '12 in stock' }).count(), 1);
  assert.deepEqual(realProblems(agentPage), []);
  await agentPage.context().close();
  await widget.context().close();
});

/** Routes the console's reply POSTs: while `sw.lose`, the hub gets them but the page gets a network error. */
async function replyRoute(page) {
  // lose: the hub gets the reply, its answer is lost; down: the hub is not reached
  const rr = { lose: true, down: false, bodies: [] };
  await page.route('**/api/conversations/*/replies', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    rr.bodies.push(JSON.parse(route.request().postData()));
    if (rr.down) return route.abort('connectionrefused');
    if (!rr.lose) return route.continue();
    await route.fetch();
    await route.abort('connectionreset');
  });
  return rr;
}

async function hubReplies(convId, token) {
  const data = await api(hub, 'GET', `/api/conversations/${convId}`, token);
  return data.timeline.filter((it) => it.type === 'reply');
}

test('a reply whose answers are lost is retried until one arrives, and never sent twice', async () => {
  const page = await newPage(browser);
  const sw = await socketSwitch(page, /\/ws\/agent/);
  await signIn(page, hub, ana.token);
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const m = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Can I change the colour of my sofa order?' });
  await openRow(page, 'colour of my sofa');

  // no live event to tell the console the reply arrived: only the client_id protects
  sw.drop();
  await page.locator('#conn', { hasText: 'Reconnecting' }).waitFor();
  const rr = await replyRoute(page);
  await page.fill('#reply-input', 'Yes: tell me the colour and I will change it.');
  await page.click('#composer-send');
  // the console keeps trying, and says so; the draft stays in sight
  await page.locator('.composer-error', { hasText: 'will be sent as soon as it is back' }).waitFor({ timeout: 15000 });
  assert.equal(await page.inputValue('#reply-input'), 'Yes: tell me the colour and I will change it.');
  assert.equal((await hubReplies(m.message.conversation_id, ana.token)).length, 1);

  // the network comes back: the next try goes through by itself, nobody clicks Send
  rr.lose = false;
  await page.locator('#timeline .tl-reply', { hasText: 'tell me the colour' }).waitFor({ timeout: 15000 });
  await page.waitForFunction(() => document.querySelector('#reply-input').value === '');
  assert.ok(rr.bodies.length >= 3, `tries: ${rr.bodies.length}`);
  assert.ok(rr.bodies.every((b) => b.client_id === rr.bodies[0].client_id), `one client_id: ${JSON.stringify(rr.bodies)}`);
  assert.equal((await hubReplies(m.message.conversation_id, ana.token)).length, 1);
  assert.equal(await page.locator('#timeline .tl-reply').count(), 1);
  assert.equal(await page.isVisible('.composer-error'), false);

  // a new draft is a new reply, with a new client_id
  await page.fill('#reply-input', 'And the delivery date stays the same.');
  await page.click('#composer-send');
  await page.locator('#timeline .tl-reply', { hasText: 'delivery date stays' }).waitFor();
  assert.notEqual(rr.bodies[rr.bodies.length - 1].client_id, rr.bodies[0].client_id);
  assert.equal((await hubReplies(m.message.conversation_id, ana.token)).length, 2);

  sw.restore();
  await page.locator('#conn.conn-live').waitFor({ timeout: 15000 });
  await page.waitForTimeout(300);
  assert.equal(await page.locator('#timeline .tl-reply').count(), 2);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a reply edited while it waits for the hub is not sent as it was: the new text waits for Enter', async () => {
  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const m = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Has my refund been sent?' });
  await openRow(page, 'refund been sent');
  const rr = await replyRoute(page);
  rr.lose = false;
  rr.down = true;
  await page.fill('#reply-input', 'Your refnud is on its way');
  await page.press('#reply-input', 'Enter');
  await page.locator('.composer-error', { hasText: 'will be sent as soon as it is back' }).waitFor({ timeout: 15000 });
  // a typo fixed while it waits; then the hub is back
  await page.fill('#reply-input', 'Your refund is on its way');
  rr.down = false;
  await page.locator('.composer-error', { hasText: 'you changed the reply' }).waitFor({ timeout: 15000 });
  assert.equal(await page.inputValue('#reply-input'), 'Your refund is on its way');
  assert.equal((await hubReplies(m.message.conversation_id, ana.token)).length, 0, 'the old text did not go out');
  await page.press('#reply-input', 'Enter');
  await page.locator('#timeline .tl-reply', { hasText: 'Your refund is on its way' }).waitFor();
  const replies = await hubReplies(m.message.conversation_id, ana.token);
  assert.deepEqual(replies.map((r) => r.text), ['Your refund is on its way']);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a reply delivered after the agent moved to another conversation leaves no draft behind', async () => {
  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  const s1 = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const x = await api(hub, 'POST', '/api/widget/messages', s1.token, { text: 'Do you deliver to Lyon?' });
  const s2 = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', s2.token, { text: 'Is the oak table in stock?' });
  await openRow(page, 'deliver to Lyon');
  const rr = await replyRoute(page);
  rr.lose = false;
  rr.down = true;
  await page.fill('#reply-input', 'Yes, in 3 days.');
  await page.press('#reply-input', 'Enter');
  // Enter again while it waits sends nothing more, and says nothing wrong
  await page.press('#reply-input', 'Enter');
  await page.locator('.composer-error', { hasText: 'will be sent as soon as it is back' }).waitFor({ timeout: 15000 });
  await openRow(page, 'oak table');
  await page.locator('#conv-head h2').waitFor();
  await messageCard(page, 'oak table').waitFor();
  rr.down = false;
  const deadline = Date.now() + 15000;
  while ((await hubReplies(x.message.conversation_id, ana.token)).length === 0) {
    assert.ok(Date.now() < deadline, 'the reply never went out');
    await page.waitForTimeout(200);
  }
  // back to it (answered now, it may have left the Pending list already)
  await page.evaluate((id) => { location.hash = `#/inbox/all/c/${encodeURIComponent(id)}`; }, x.message.conversation_id);
  await page.locator('#timeline .tl-reply', { hasText: 'Yes, in 3 days.' }).waitFor({ timeout: 15000 });
  assert.equal(await page.inputValue('#reply-input'), '', 'the sent text is not offered again');
  assert.equal(await page.isVisible('.composer-error'), false);
  assert.equal((await hubReplies(x.message.conversation_id, ana.token)).length, 1);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a lost reply answer is cleared by the reply\'s own live event', async () => {
  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  const widget = await newPage(browser);
  await openWidget(widget, hub);
  await widgetSend(widget, 'Do you repair old armchairs?');
  await openRow(page, 'repair old armchairs');
  const rr = await replyRoute(page);
  await page.fill('#reply-input', 'We do: send us a photo of it.');
  await page.press('#reply-input', 'Enter');
  await page.locator('#timeline .tl-reply', { hasText: 'send us a photo' }).waitFor();
  // the send ends (the retries stop once the reply is seen), with no error and no text left
  await page.waitForFunction(() => !document.querySelector('#composer-send').disabled && document.querySelector('#reply-input').value === '', null, { timeout: 15000 });
  assert.equal(await page.isVisible('.composer-error'), false);
  rr.lose = false;
  await widget.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'send us a photo' }).waitFor();
  await page.waitForTimeout(300);
  assert.equal(await widget.locator('#hub-chat-widget .hw-in', { hasText: 'send us a photo' }).count(), 1);
  assert.equal(await page.locator('#timeline .tl-reply').count(), 1);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
  await widget.context().close();
});

test('a reply being typed stays reachable when a colleague ends the session', async () => {
  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const m = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Is the walnut table oiled or varnished?' });
  await openRow(page, 'walnut table');
  const draft = 'It is oiled, with a natural hardwax oil.';
  await page.fill('#reply-input', draft);

  await api(hub, 'POST', `/api/conversations/${m.message.conversation_id}/end-session`, omar.token, {});
  await page.locator('#conv-head .badge', { hasText: 'Session ended' }).waitFor();
  assert.equal(await page.isDisabled('.composer-tabs [data-mode="reply"]'), true);
  // the text is still there, read-only, with a way out
  assert.equal(await page.isVisible('#reply-input'), true);
  assert.equal(await page.inputValue('#reply-input'), draft);
  assert.equal(await page.getAttribute('#reply-input', 'readonly'), '');
  await page.locator('.composer-notice', { hasText: 'this reply can no longer be sent' }).waitFor();

  await page.click('[data-composer-action="move-to-comment"]');
  assert.equal(await page.inputValue('#comment-input'), draft);
  assert.equal(await page.isVisible('#reply-input'), false);
  assert.equal(await page.locator('[data-composer-action="move-to-comment"]').count(), 0);
  await page.click('#composer-send');
  await page.locator('#timeline .tl-comment', { hasText: 'natural hardwax oil' }).waitFor();
  assert.equal(await page.locator('#timeline .tl-reply').count(), 0);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a conversation that failed to load offers Retry, and loads by itself once the console reconnects', async () => {
  const page = await newPage(browser);
  const sw = await socketSwitch(page, /\/ws\/agent/);
  await signIn(page, hub, ana.token);
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'My mirror arrived cracked.' });
  await page.locator('#list .row', { hasText: 'mirror arrived cracked' }).waitFor();
  let unreachable = true;
  await page.route('**/api/conversations/*', (route) => {
    if (unreachable && route.request().method() === 'GET') return route.abort('connectionrefused');
    return route.continue();
  });

  // Retry, by hand
  await page.locator('#list .row', { hasText: 'mirror arrived cracked' }).click();
  await page.locator('#conv-pane .error', { hasText: 'could not reach the hub' }).waitFor();
  unreachable = false;
  await page.click('#conv-pane [data-conv-action="retry"]');
  await messageCard(page, 'mirror arrived cracked').waitFor();

  // during an outage: back to the list, open it again, it fails; the console reconnects
  await page.evaluate(() => { location.hash = '#/inbox/pending'; });
  await page.locator('#conv-pane .conv-empty').waitFor();
  sw.drop();
  await page.locator('#conn', { hasText: 'Reconnecting' }).waitFor();
  unreachable = true;
  await page.locator('#list .row', { hasText: 'mirror arrived cracked' }).click();
  await page.locator('#conv-pane .error', { hasText: 'could not reach the hub' }).waitFor();
  unreachable = false;
  sw.restore();
  await page.locator('#conn.conn-live').waitFor({ timeout: 15000 });
  await messageCard(page, 'mirror arrived cracked').waitFor();
  assert.equal(await page.locator('#conv-pane .error').count(), 0);
  assert.equal(await page.isVisible('#reply-input'), true);
  await page.context().close();
});

test('after a hub restart (kill -9) both pages reconnect and keep working', async () => {
  const agentPage = await newPage(browser);
  await signIn(agentPage, hub, ana.token);
  const widget = await newPage(browser);
  await openWidget(widget, hub);
  await widgetSend(widget, 'Before the restart.');
  await agentPage.locator('#list .row', { hasText: 'Before the restart' }).waitFor();

  const { port, proxyPort, dataDir } = hub;
  await hub.kill();
  await agentPage.locator('#conn', { hasText: 'Reconnecting' }).waitFor();
  await widget.locator('#hub-chat-widget .hw-conn', { hasText: 'Reconnecting' }).waitFor();
  hub = await startHub({ port, proxyPort, dataDir });

  await agentPage.locator('#conn.conn-live').waitFor({ timeout: 20000 });
  await widget.locator('#hub-chat-widget .hw-conn').waitFor({ state: 'hidden', timeout: 20000 });
  await widgetSend(widget, 'After the restart.');
  await agentPage.locator('#list .row', { hasText: 'After the restart' }).waitFor();
  assert.equal(await agentPage.locator('#list .row', { hasText: 'Before the restart' }).count(), 1);
  assert.equal(await widget.locator('#hub-chat-widget .hw-out', { hasText: 'Before the restart' }).count(), 1);
  await agentPage.context().close();
  await widget.context().close();
});

test('a widget history answered late keeps what arrived meanwhile', async () => {
  // The widget loads its history (GET /api/widget/messages) when its socket first
  // connects. Here that answer is read from the hub at once but handed to the page only
  // after an agent's reply arrived live: it predates the reply, and rebuilding the log
  // from it must not wipe the reply (nor the customer's own message).
  const widget = await newPage(browser);
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  let snapshotTaken;
  const taken = new Promise((resolve) => { snapshotTaken = resolve; });
  let held = 0;
  await widget.route('**/api/widget/messages*', async (route) => {
    if (route.request().method() !== 'GET' || held > 0) return route.continue();
    held += 1;
    const response = await route.fetch();
    snapshotTaken();
    await gate;
    await route.fulfill({ response });
  });
  await openWidget(widget, hub);
  await widgetSend(widget, 'Is the walnut shelf back in stock?');
  await taken;
  const pending = await api(hub, 'GET', '/api/inbox?folder=pending&limit=500', ana.token);
  const msg = pending.items.find((m) => m.text.includes('walnut shelf'));
  assert.ok(msg, 'the message is pending');
  await api(hub, 'POST', `/api/conversations/${msg.conversation_id}/replies`, ana.token, { text: 'Yes, since Monday.' });
  await widget.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'since Monday' }).waitFor();

  release();
  // The log counts the history loads it applied.
  await widget.locator('#hub-chat-widget .hw-log[data-history-loads="1"]').waitFor({ state: 'attached' });
  assert.equal(await widget.locator('#hub-chat-widget .hw-in', { hasText: 'since Monday' }).count(), 1, 'the live reply is kept');
  const mine = widget.locator('#hub-chat-widget .hw-out', { hasText: 'walnut shelf' });
  assert.equal(await mine.count(), 1, 'the sent message is kept');
  assert.equal(await mine.locator('.hw-meta', { hasText: /· Sent$/ }).count(), 1, 'and shown as sent');
  assert.deepEqual(realProblems(widget), []);
  await widget.context().close();
});
