// The SDK against two real instances on one database and one Redis:
// failover when the instance it is on is killed, resume without gaps,
// outbox replay after a restart (each change exactly once), the conflict
// handler, and a refused or revoked token. Every frame the SDK sends or
// receives is checked against docs/schemas (test/support/frames.mjs).

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { Instance, token, rest, serverTasks, uniqueUser, waitFor, connectionState, recordStates, viewSatisfies } from '../support/harness.mjs';
import { testClient, closeAll, memoryStorage, onInstance } from '../support/client.mjs';

let a;
let b;

before(async () => {
  a = new Instance('sync-a');
  b = new Instance('sync-b');
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

const live = (client, what = 'live') => connectionState(client, (s) => s.status === 'live', { what });

/** Titles of the view, sorted; fails on a duplicate id. */
function titlesOf(view) {
  const snap = view.getSnapshot();
  assert.equal(new Set(snap.map((t) => t.id)).size, snap.length, 'no task twice in the view');
  return snap.map((t) => t.title).sort();
}

/** The task.* events a recorder received, in arrival order. */
const events = (rec, from = 0) => rec.received.slice(from).filter((f) => /^task\.(created|updated|deleted)$/.test(f.type));

test('failover: the instance the client is on is killed (SIGKILL); it moves to the other URL and misses nothing', async () => {
  const user = uniqueUser('fail');
  const tok = token(user);
  await rest(a, tok, 'POST', `/api/${user}/tasks`, { title: 'before' });
  const { client: c, rec } = client({ urls: [a, b], token: tok });
  const view = c.tasks();
  await c.ready();
  await live(c);
  assert.ok(onInstance(c, a), `on the first URL first: ${JSON.stringify(c.connection.get())}`);
  assert.deepEqual(titlesOf(view), ['before']);

  await a.kill();
  // Changes while the client finds the other instance.
  for (let i = 0; i < 5; i++) await rest(b, tok, 'POST', `/api/${user}/tasks`, { title: `during ${i}` });
  await connectionState(c, () => onInstance(c, b), { what: 'live on the second instance' });
  await rest(b, tok, 'POST', `/api/${user}/tasks`, { title: 'after' });

  const want = ['after', 'before', 'during 0', 'during 1', 'during 2', 'during 3', 'during 4'];
  await viewSatisfies(view, (s) => s.length === want.length);
  assert.deepEqual(titlesOf(view), want);
  // Exactly once: no seq applied twice, none skipped, and the client's seq is the server's.
  const seqs = events(rec).map((f) => f.seq);
  assert.equal(new Set(seqs).size, seqs.length, `an event arrived twice: ${seqs}`);
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'in seq order');
  assert.equal(c.seq, 7);
  assert.ok(rec.opened.some((u) => u.includes(`:${b.port}/`)), 'the second URL was tried');
  await a.start();
});

test('resume: changes made over REST while the client is offline arrive once each, in seq order, without a snapshot', async () => {
  const user = uniqueUser('resume');
  const tok = token(user);
  const { client: c, rec, online } = client({ urls: [a, b], token: tok });
  const view = c.tasks();
  await c.ready();
  const first = await c.tasks().create({ title: 'one' });
  await c.tasks().create({ title: 'two' });
  await viewSatisfies(view, (s) => s.length === 2 && s.every((t) => !t.pending));
  await waitFor(() => c.seq === 2, { what: 'seq 2 applied' });

  online.set(false);
  await connectionState(c, (s) => s.status === 'offline', { what: 'offline' });
  // The SDK detaches from its socket at once; the recorder below it keeps
  // listening until the close handshake ends, and a frame the server sent
  // before it saw the close may still land there: count from then on.
  await waitFor(() => rec.sockets.every((s) => s.readyState === s.CLOSED), { what: 'socket closed' });
  const mark = rec.received.length;
  const made = [];
  for (let i = 0; i < 6; i++) made.push(await rest(b, tok, 'POST', `/api/${user}/tasks`, { title: `away ${i}` }));
  await rest(b, tok, 'PATCH', `/api/${user}/tasks/${first.id}`, { title: 'one, renamed' });
  await rest(b, tok, 'DELETE', `/api/${user}/tasks/${made[0].id}`);
  assert.equal(rec.received.length, mark, 'nothing arrives while offline');

  online.set(true);
  await live(c, 'live again');
  await waitFor(() => c.seq === 10, { what: 'seq 10 applied' });
  const after = events(rec, mark);
  assert.deepEqual(after.map((f) => f.seq), [3, 4, 5, 6, 7, 8, 9, 10], 'each missed change once, in order');
  assert.ok(!rec.received.slice(mark).some((f) => f.type === 'snapshot'), 'resumed from its seq, no snapshot');
  assert.deepEqual(titlesOf(view), ['away 1', 'away 2', 'away 3', 'away 4', 'away 5', 'one, renamed', 'two']);
  assert.deepEqual(titlesOf(view), (await serverTasks(a, tok, user)).map((t) => t.title).sort());
});

test('outbox replay: changes sent but never acknowledged (the replies lost) are replayed by a new client on the same storage, each applied once', async () => {
  const user = uniqueUser('replay');
  const tok = token(user);
  const keep = await rest(a, tok, 'POST', `/api/${user}/tasks`, { title: 'keep' });
  const done = await rest(a, tok, 'POST', `/api/${user}/tasks`, { title: 'finish me' });
  const gone = await rest(a, tok, 'POST', `/api/${user}/tasks`, { title: 'drop me' });
  const storage = memoryStorage();

  const first = client({ urls: [a], token: tok, storage });
  const view = first.client.tasks();
  await first.client.ready();
  await viewSatisfies(view, (s) => s.length === 3);
  first.rec.mute = true; // the server commits, its replies never arrive
  const creates = [view.create({ title: 'new 1' }), view.create({ title: 'new 2' }), view.create({ title: 'new 3' })];
  for (const p of creates) p.catch(() => {}); // settled (or not) by the closed client
  view.update(keep.id, { title: 'kept, renamed' }).catch(() => {});
  view.complete(done.id, true).catch(() => {});
  view.delete(gone.id).catch(() => {});
  // Optimistic: pending in the view before any reply.
  await viewSatisfies(view, (l) => l.some((t) => t.title === 'new 1' && t.pending) && !l.some((t) => t.id === gone.id));
  const sentTypes = () => first.rec.sent.filter((f) => f.type.startsWith('task.') && f.type !== 'task.list');
  await waitFor(() => sentTypes().length === 6, { what: 'six mutations on the wire' });
  await waitFor(async () => (await serverTasks(a, tok, user)).length === 5, { what: 'the server to apply them' });
  assert.equal(first.client.outbox.get().length, 6, 'nothing acknowledged');
  const ids = sentTypes().map((f) => f.mutation_id);
  assert.ok(ids.every(Boolean), 'every mutation carries a mutation_id');
  await first.client.close(); // the "restart": the outbox stays in storage

  const second = client({ urls: [b], token: tok, storage });
  const view2 = second.client.tasks();
  await second.client.ready();
  await waitFor(() => second.client.outbox.get().length === 0, { what: 'the outbox to drain' });
  const replayed = second.rec.sent.filter((f) => f.mutation_id).map((f) => f.mutation_id);
  assert.deepEqual([...replayed].sort(), [...ids].sort(), 'the same mutation ids, each sent again once');

  const onServer = await serverTasks(b, tok, user);
  assert.deepEqual(onServer.map((t) => t.title).sort(), ['finish me', 'kept, renamed', 'new 1', 'new 2', 'new 3']);
  assert.equal(onServer.find((t) => t.id === keep.id).version, 2, 'the update applied once');
  assert.equal(onServer.find((t) => t.id === done.id).completed, true);
  assert.equal(onServer.find((t) => t.id === done.id).version, 2, 'the completion applied once');
  await viewSatisfies(view2, (s) => s.length === 5 && s.every((t) => !t.pending));
  assert.deepEqual(titlesOf(view2), onServer.map((t) => t.title).sort());
  assert.deepEqual(second.client.conflicts.get(), [], 'a replayed change is no conflict');
});

test('conflict: an update on a stale base_version calls onConflict with both versions; "local" wins on the server, the default keeps the server\'s and reports it', async () => {
  const user = uniqueUser('conflict');
  const tok = token(user);
  const t1 = await rest(a, tok, 'POST', `/api/${user}/tasks`, { title: 't1' });
  const t2 = await rest(a, tok, 'POST', `/api/${user}/tasks`, { title: 't2' });
  const seen = [];
  const mine = client({
    urls: [a, b], token: tok,
    onConflict: (c) => {
      seen.push(c);
      return 'local';
    },
  });
  const plain = client({ urls: [b, a], token: tok });
  const other = client({ urls: [b], token: tok });
  const views = [mine, plain, other].map((x) => x.client.tasks());
  await Promise.all([mine, plain, other].map((x) => x.client.ready()));

  mine.online.set(false);
  plain.online.set(false);
  await connectionState(mine.client, (s) => s.status === 'offline');
  await connectionState(plain.client, (s) => s.status === 'offline');
  views[0].update(t1.id, { title: 't1 mine' }).catch(() => {});
  views[1].update(t2.id, { title: 't2 plain' }).catch(() => {});
  await views[2].update(t1.id, { title: 't1 theirs', priority: 'high' });
  await views[2].update(t2.id, { title: 't2 theirs' });

  mine.online.set(true);
  plain.online.set(true);
  await waitFor(() => seen.length === 1, { what: 'onConflict' });
  assert.equal(seen[0].server.id, t1.id);
  assert.equal(seen[0].server.title, 't1 theirs');
  assert.equal(seen[0].server.version, 2);
  assert.equal(seen[0].local.title, 't1 mine');

  await waitFor(async () => (await rest(a, tok, 'GET', `/api/${user}/tasks/${t1.id}`)).title === 't1 mine', { what: '"local" to win on the server' });
  const s1 = await rest(a, tok, 'GET', `/api/${user}/tasks/${t1.id}`);
  assert.equal(s1.priority, 'high', 'only the local fields were applied over the server version');
  await waitFor(() => plain.client.conflicts.get().length === 1, { what: 'the default handler to report the conflict' });
  assert.equal((await rest(a, tok, 'GET', `/api/${user}/tasks/${t2.id}`)).title, 't2 theirs', 'the default keeps the server\'s');
  for (const v of views) {
    await viewSatisfies(v, (s) => s.find((t) => t.id === t1.id)?.title === 't1 mine' && s.find((t) => t.id === t2.id)?.title === 't2 theirs' && s.every((t) => !t.pending));
  }
  await waitFor(() => mine.client.outbox.get().length === 0 && plain.client.outbox.get().length === 0, { what: 'outboxes to drain' });
});

test('a refused token: state unauthenticated, and no reconnect loop', async () => {
  const user = uniqueUser('refused');
  const bad = token(user, '1h', 'another-secret-another-secret-0123456789');
  const { client: c, rec } = client({ urls: [a, b], token: bad });
  const states = recordStates(c);
  await connectionState(c, (s) => s.status === 'unauthenticated', { what: 'unauthenticated' });
  const tries = rec.opened.length;
  assert.ok(tries <= 2, `${tries} sockets opened for one refused token`);
  // Watch for a while: nothing more is tried, the state stays.
  await delay(3000);
  assert.equal(rec.opened.length, tries, 'no retry with the refused token');
  assert.equal(c.connection.get().status, 'unauthenticated');
  assert.ok(!states.some((s) => s.status === 'live'));
});

test('sign out everywhere: the live client ends unauthenticated (4010, then its token refused), not in a reconnect loop', async () => {
  const user = uniqueUser('revoked');
  const tok = token(user);
  const { client: c, rec } = client({ urls: [a, b], token: tok });
  await c.ready();
  await live(c);
  await rest(b, tok, 'DELETE', `/api/${user}/sessions`);
  await connectionState(c, (s) => s.status === 'unauthenticated', { what: 'unauthenticated after the revocation' });
  const tries = rec.opened.length;
  await delay(3000);
  assert.equal(rec.opened.length, tries, 'no retry with the revoked token');
  assert.equal(c.connection.get().status, 'unauthenticated');
});
