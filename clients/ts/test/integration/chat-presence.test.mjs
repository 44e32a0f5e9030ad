// Chat and presence through the SDK, across two instances (Redis carries
// turns and presence between them): a turn streams as typed events and can
// be cancelled, a turn started on another client streams here too, and
// presence shows the sessions on both instances. The server's built-in
// offline assistant answers (no OPENAI_* set): it runs the task tools for
// simple commands and streams its words 15 ms apart, slow enough to cancel.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Instance, token, rest, uniqueUser, waitFor, connectionState } from '../support/harness.mjs';
import { testClient, closeAll } from '../support/client.mjs';

let a;
let b;

before(async () => {
  a = new Instance('chat-a');
  b = new Instance('chat-b');
  await Promise.all([a.start(), b.start()]);
});

after(async () => {
  await closeAll();
  await Promise.all([a?.stop(), b?.stop()]);
});

afterEach(async () => {
  assert.deepEqual(await closeAll(), [], 'every frame sent and received validates against docs/schemas');
});

const client = testClient;

async function collect(stream) {
  const out = [];
  for await (const ev of stream) out.push(ev);
  return out;
}

test('chat: a turn streams as typed events (started, tool call and result, deltas, done); its task change arrives as an event; another client streams it too', async () => {
  const user = uniqueUser('chat');
  const tok = token(user);
  const here = client({ urls: [a], token: tok, device: 'laptop' });
  const there = client({ urls: [b], token: tok, device: 'phone' });
  await Promise.all([here.client.ready(), there.client.ready()]);
  const followed = [];
  there.client.chat.turns.subscribe((s) => followed.push({ stream: s, events: collect(s) }));
  const view = there.client.tasks();

  const stream = here.client.chat.send('add a task to buy groceries');
  const events = await collect(stream);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'started');
  assert.equal(types.at(-1), 'done');
  assert.ok(types.includes('tool_call') && types.includes('tool_result') && types.includes('delta'), types.join(' '));
  const done = events.at(-1);
  assert.equal(done.status, 'complete');
  assert.equal(events.filter((e) => e.type === 'delta').map((e) => e.text).join(''), done.text, 'the deltas make the answer');
  const call = events.find((e) => e.type === 'tool_call');
  assert.equal(call.name, 'add_task');
  const result = events.find((e) => e.type === 'tool_result');
  assert.equal(result.is_error, false);
  const conversation = await stream.conversationId;
  assert.ok(conversation > 0);

  // The tool's change is a normal task event on every session, on either instance.
  await waitFor(() => view.getSnapshot().some((t) => t.id === result.result.task_id), { what: 'the added task on the other client' });
  // The other client, on the other instance, got the same turn as its own stream.
  await waitFor(() => followed.length === 1, { what: 'the turn on the other client' });
  assert.equal(followed[0].stream.local, false);
  const theirs = await followed[0].events;
  assert.equal(theirs[0].type, 'started');
  assert.equal(theirs[0].message, 'add a task to buy groceries');
  assert.equal(theirs.at(-1).type, 'done');
  assert.equal(theirs.at(-1).text, done.text);
  assert.equal(await followed[0].stream.conversationId, conversation);

  // A second message in the same conversation, listing the tasks.
  const next = await collect(here.client.chat.send('show me all my tasks', { conversationId: conversation }));
  assert.equal(next.at(-1).type, 'done');
  assert.match(next.at(-1).text, /groceries/i);
  assert.equal((await rest(a, tok, 'GET', `/api/${user}/conversations/${conversation}/messages`)).length >= 4, true);
});

test('chat: cancel() stops a streaming turn; it ends with done, status cancelled and the partial text', async () => {
  const user = uniqueUser('cancel');
  const tok = token(user);
  const here = client({ urls: [a], token: tok });
  const there = client({ urls: [b], token: tok });
  await Promise.all([here.client.ready(), there.client.ready()]);
  // Anything the offline assistant does not understand gets its help text, ~90 words at 15 ms each.
  const stream = here.client.chat.send('please write me a long poem about the sea');
  const events = [];
  for await (const ev of stream) {
    events.push(ev);
    if (ev.type === 'delta' && events.filter((e) => e.type === 'delta').length === 2) await stream.cancel();
  }
  const done = events.at(-1);
  assert.equal(done.type, 'done');
  assert.equal(done.status, 'cancelled');
  assert.ok(done.text.length > 0 && done.text.length < 200, `partial text (${done.text.length} characters)`);
  const deltas = events.filter((e) => e.type === 'delta').length;
  assert.ok(deltas < 20, `${deltas} deltas after cancel`);

  // A cancel sent from the other instance's client stops a turn started here (relayed).
  let followed;
  there.client.chat.turns.subscribe((s) => { followed = s; });
  const second = here.client.chat.send('another question nobody can answer', { conversationId: await stream.conversationId });
  await waitFor(() => followed, { what: 'the turn on the other client' });
  const mine = collect(second);
  const seen = [];
  for await (const ev of followed) {
    seen.push(ev);
    if (ev.type === 'delta' && seen.filter((e) => e.type === 'delta').length === 1) await followed.cancel();
  }
  assert.equal(seen.at(-1).status, 'cancelled');
  assert.equal((await mine).at(-1).status, 'cancelled');
});

test('presence: sessions on both instances, joins and leaves seen by each', async () => {
  const user = uniqueUser('presence');
  const tok = token(user);
  const laptop = client({ urls: [a], token: tok, device: 'laptop' });
  await laptop.client.ready();
  await waitFor(() => laptop.client.presence.get().online === 1, { what: 'one session' });
  const phone = client({ urls: [b], token: tok, device: 'phone' });
  await phone.client.ready();

  for (const c of [laptop.client, phone.client]) {
    const p = await waitFor(() => (c.presence.get().online === 2 ? c.presence.get() : null), { what: 'two sessions' });
    assert.deepEqual(p.sessions.map((s) => s.device).sort(), ['laptop', 'phone']);
    const instances = new Set(p.sessions.map((s) => s.instance));
    assert.equal(instances.size, 2, `sessions on both instances: ${[...instances]}`);
  }
  await phone.client.close();
  await waitFor(() => laptop.client.presence.get().online === 1, { what: 'the phone to leave' });
  assert.deepEqual(laptop.client.presence.get().sessions.map((s) => s.device), ['laptop']);
  await connectionState(laptop.client, (s) => s.status === 'live');
});
