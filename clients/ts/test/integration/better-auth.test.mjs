// betterAuthToken and tokenFromSetAuthJwt (dist/better-auth.js, the
// package's @tasksync/client/better-auth) against a real Better Auth server
// with 10-second tokens, and those tokens accepted by a tasksync instance
// that trusts Better Auth's JWKS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { betterAuthToken, tokenFromSetAuthJwt } from '../../dist/better-auth.js';
import { startBetterAuth } from '../support/better-auth-server.mjs';
import { Instance, rest, waitFor, connectionState, recordStates } from '../support/harness.mjs';
import { testClient, closeAll } from '../support/client.mjs';

let ba;
let inst;

before(async () => {
  ba = await startBetterAuth({ expirationTime: '10s' });
  inst = new Instance('ba', {
    AUTH_JWT_SECRET: null, AUTH_JWKS_URL: ba.jwksURL, AUTH_ISSUER: ba.url, AUTH_AUDIENCE: ba.url,
    // No clock-skew allowance: a socket whose token is not refreshed is closed at its exp.
    AUTH_LEEWAY: '0s',
  });
  await inst.start();
});

after(async () => {
  const invalid = await closeAll();
  await inst?.stop();
  await ba?.close();
  assert.deepEqual(invalid, [], 'every frame sent and received validates against docs/schemas');
});


/** A fetch that counts the requests it makes. */
function countingFetch() {
  const f = (...args) => {
    f.calls++;
    return fetch(...args);
  };
  f.calls = 0;
  return f;
}

const claims = (tok) => JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString());

test('betterAuthToken: one request for concurrent callers, the token reused, a new one before it expires', async () => {
  const { cookie, userId } = await ba.signUp(`cache-${Date.now()}@example.com`);
  const f = countingFetch();
  const getToken = betterAuthToken({ baseURL: ba.url, fetch: f, headers: { cookie } });

  const [a, b, c] = await Promise.all([getToken(), getToken(), getToken()]);
  assert.equal(f.calls, 1, 'three concurrent calls, one request');
  assert.ok(a && a === b && b === c);
  assert.equal(claims(a).sub, userId);
  assert.equal(claims(a).exp - claims(a).iat, 10);
  assert.equal(await getToken(), a, 'reused while fresh');
  assert.equal(f.calls, 1);

  // Half of its 10 s later, a call brings a newer token (not an expired one).
  const next = await waitFor(async () => {
    const t = await getToken();
    return t !== a ? t : null;
  }, { timeout: 12000, interval: 100, what: 'a newer token' });
  assert.ok(claims(next).exp > claims(a).exp);
  assert.ok(Date.now() / 1000 < claims(a).exp, 'replaced before the old one expired');
  assert.ok(f.calls <= 3, `${f.calls} requests for two tokens`);

  // The tasksync server accepts it (JWKS, iss and aud of Better Auth).
  assert.deepEqual(await rest(inst, next, 'GET', `/api/${userId}/tasks`), []);
});

test('betterAuthToken: null once signed out (401), and clear() drops the cached token', async () => {
  const { cookie } = await ba.signUp(`out-${Date.now()}@example.com`);
  const getToken = betterAuthToken({ baseURL: `${ba.url}/`, headers: { cookie } });
  assert.ok(await getToken());
  await ba.signOut(cookie);
  assert.ok(await getToken(), 'the cached token is still returned until it goes stale');
  getToken.clear();
  assert.equal(await getToken(), null);
});

test('betterAuthToken: a failing Better Auth rejects, unless the cached token is still valid', async () => {
  const { cookie } = await ba.signUp(`down-${Date.now()}@example.com`);
  let down = false;
  const f = (...args) => (down ? Promise.reject(new TypeError('fetch failed')) : fetch(...args));
  const getToken = betterAuthToken({ baseURL: ba.url, fetch: f, headers: { cookie }, refreshBeforeMs: 60_000 });
  const t = await getToken();
  down = true;
  // Stale (past half of its life) but unexpired: returned rather than failing.
  await waitFor(() => Date.now() / 1000 > claims(t).exp - 5, { timeout: 8000, what: 'the token going stale' });
  assert.equal(await getToken(), t);
  await waitFor(() => Date.now() / 1000 > claims(t).exp, { timeout: 8000, what: 'the token expiring' });
  await assert.rejects(getToken(), /fetch failed/);
});

test('tokenFromSetAuthJwt reads the set-auth-jwt header of getSession, and set() caches it', async () => {
  const { cookie, userId } = await ba.signUp(`header-${Date.now()}@example.com`);
  const res = await fetch(`${ba.url}/api/auth/get-session`, { headers: { cookie } });
  assert.equal(res.status, 200);
  const tok = tokenFromSetAuthJwt(res);
  assert.ok(tok, 'a set-auth-jwt header');
  assert.equal(claims(tok).sub, userId);
  assert.equal(tokenFromSetAuthJwt(new Headers()), null);

  let calls = 0;
  const getToken = betterAuthToken({ baseURL: ba.url, fetch: () => { calls++; throw new Error('not expected'); } });
  getToken.set(tok);
  assert.equal(await getToken(), tok);
  assert.equal(calls, 0);
  assert.deepEqual(await rest(inst, tok, 'GET', `/api/${userId}/tasks`), []);
});

test('createClient + betterAuthToken: the socket stays open across several 10-second tokens (auth.refresh), then signing out ends in unauthenticated', async () => {
  const { cookie, userId } = await ba.signUp(`sdk-${Date.now()}@example.com`);
  const getToken = betterAuthToken({ baseURL: ba.url, headers: { cookie } });
  const { client, rec } = testClient({ urls: [inst], getToken });
  const states = recordStates(client);
  await client.ready();
  assert.equal(client.userId, userId);
  const hello = rec.received.find((f) => f.type === 'hello');
  const refreshes = () => rec.received.filter((f) => f.type === 'reply' && f.re === 'auth.refresh');

  // Keep the socket open well past two lifetimes of the first token.
  const until = Date.parse(hello.token_expires_at) + 12000;
  await waitFor(() => Date.now() > until, { timeout: 40000, interval: 200, what: 'two token lifetimes' });
  assert.ok(refreshes().length >= 3, `${refreshes().length} auth.refresh replies`);
  assert.ok(refreshes().every((r) => Date.parse(r.expires_at) > Date.parse(hello.token_expires_at)), 'each refresh brought a later expiry');
  assert.equal(rec.opened.length, 1, 'one socket all along');
  assert.ok(states.every((s) => s.status !== 'unauthenticated' && s.status !== 'reconnecting'), states.map((s) => s.status).join(' '));
  const errors = rec.received.filter((f) => f.type === 'error');
  assert.deepEqual(errors, [], 'no refresh refused');
  // The socket still works.
  const task = await client.tasks().create({ title: 'made on a refreshed socket' });
  assert.ok(task.id > 0);
  assert.equal((await rest(inst, await getToken(), 'GET', `/api/${userId}/tasks/${task.id}`)).title, 'made on a refreshed socket');

  // Signed out: no new token; when the last one expires the server closes
  // the socket (4001) and the client stops, unauthenticated.
  await ba.signOut(cookie);
  await connectionState(client, (s) => s.status === 'unauthenticated', { timeout: 20000, what: 'unauthenticated after sign-out' });
  const tries = rec.opened.length;
  assert.ok(tries <= 3, `${tries} sockets`);
  await delay(2000);
  assert.equal(rec.opened.length, tries, 'no reconnect loop');
  assert.equal(client.connection.get().status, 'unauthenticated');
  assert.deepEqual(rec.invalid, [], 'every frame validates against docs/schemas');
});
