// tasksync in the browser. The parts:
//
//   auth.js    the token: from /#token=... or pasted, kept in sessionStorage
//   /sdk/      the client SDK (clients/ts, served by the server): the socket,
//              reconnects, sync, the durable outbox, presence, chat streams.
//              The protocol is implemented there only.
//   board.js   the board: create, edit, complete, delete, filter, sort
//   when.js    due times, reminders and repeat rules as text and form values
//   history.js a task's versions (the change log) with restore
//   reminders.js reminder frames: a notification or an in-page alert, snooze
//   chat.js    the assistant panel: conversations, streaming answers
//   offline.js the service worker's registration (sw.js: the offline shell)
//
// This file wires them together and owns the page's chrome: sign-in and
// sign-out, the connection indicator, presence and the session banner.

import { createClient, indexedDBStorage } from '/sdk/tasksync-client.js';
import { $, h, toast, formatTime, formatIn } from './dom.js';
import { initialToken, TokenSource, checkToken, forget, save, tokenUser, decodeToken } from './auth.js';
import { Board, describeError } from './board.js';
import { Chat } from './chat.js';
import { Reminders } from './reminders.js';
import { registerOffline } from './offline.js';

let tokens = null;
let client = null;
let userId = '';
let expiryTimer = 0;
let greetedSession = '';
let everLive = false;
const unsubscribe = [];

/** REST under /api/{user_id}, with the bearer token; JSON in and out. */
async function api(path, init = {}) {
  const res = await fetch(`/api/${encodeURIComponent(userId)}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${tokens.token}`, Accept: 'application/json', ...(init.headers || {}) },
  });
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(body?.error?.message || `HTTP ${res.status}`);
    err.code = body?.error?.code;
    err.status = res.status;
    throw err;
  }
  return body;
}

const board = new Board({ api });
const chat = new Chat({ api });
const reminders = new Reminders({ board });

// ------------------------------------------------------------ sign-in

function showSignin(reason = '') {
  $('#app').hidden = true;
  $('#signin').hidden = false;
  const r = $('#signin-reason');
  r.textContent = reason;
  r.hidden = !reason;
  $('#signin-error').hidden = true;
  $('#signin-token').value = '';
  $('#signin-token').focus();
  document.title = 'Sign in · tasksync';
}

$('#signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const raw = $('#signin-token').value.trim();
  const problem = raw ? checkToken(raw) : 'Paste an access token first.';
  const err = $('#signin-error');
  if (problem) {
    err.textContent = problem;
    err.hidden = false;
    $('#signin-token').focus();
    return;
  }
  save(raw);
  start(new TokenSource(raw, 'pasted'));
});

$('#signin-token').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    $('#signin-form').requestSubmit();
  }
});

// The stored task list, last seq and outbox (IndexedDB): one per browser profile.
const storage = indexedDBStorage();

/**
 * Ends the client. Its outbox stays in IndexedDB (for this user only: the SDK never shows it to
 * another); with wipe, the stored list is deleted too, unless changes still wait to be sent
 * (they are sent at this user's next sign-in on this device: nothing made here is lost).
 */
function stopClient({ wipe = false } = {}) {
  for (const off of unsubscribe.splice(0)) off();
  const c = client;
  client = null;
  board.detach();
  chat.detach();
  reminders.detach();
  if (!c) return;
  const unsent = c.outbox.get().length;
  void c.close().then(() => (wipe && unsent === 0 ? storage.clear() : undefined)).catch(() => {});
}

function signOut(reason) {
  stopClient({ wipe: true }); // a signed-out user's tasks do not stay on a shared computer
  forget();
  tokens = null;
  clearTimeout(expiryTimer);
  chat.reset();
  setPresence(null);
  showSignin(reason);
}

$('#signout').addEventListener('click', () => signOut('You signed out.'));
$('#signout-all').addEventListener('click', async () => {
  $('#account').open = false;
  try {
    await api('/sessions', { method: 'DELETE' }); // every socket closes with 4010, this one too
  } catch (err) {
    toast(`Could not sign out everywhere: ${err.message}`, { kind: 'error' });
  }
});

// ------------------------------------------------------------ the session

function start(source) {
  stopClient();
  if (userId && source.userId !== userId) chat.reset();
  tokens = source;
  userId = source.userId;
  greetedSession = '';
  everLive = false;
  showUser(userId);
  $('#signin').hidden = true;
  $('#app').hidden = false;
  document.title = 'tasksync';
  hideBanner();
  client = createClient({
    url: location.origin,
    getToken: () => tokens?.token ?? null,
    storage,
    userId, // the stored list and outbox show at once (offline too) when they are this user's
    onConflict: (c) => board.conflict(c),
    device: deviceLabel(), // presence lists it; no secret
  });
  board.attach(client);
  chat.attach(client);
  reminders.attach(client);
  unsubscribe.push(client.connection.subscribe(onState));
  unsubscribe.push(client.presence.subscribe((p) => setPresence(p)));
  onState(client.connection.get());
}

/** "Chrome on Linux": how presence names this device. */
function deviceLabel() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS'
    : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

function showUser(id) {
  $('#user-id').textContent = id;
  $('#user-id-full').textContent = id;
  $('#avatar').textContent = (id[0] || '?').toUpperCase();
}

/** A new socket said hello (a new session id). */
function greeted(s) {
  greetedSession = s.sessionId;
  everLive = true;
  if (client.userId && client.userId !== userId) {
    userId = client.userId;
    showUser(userId);
  }
  scheduleExpiry(tokens.expiresAt);
  chat.connected(s.sessionId);
}

// ------------------------------------------------------------ connection state

// The SDK's statuses, as the pill shows them (data-state keeps the names
// the stylesheet and the tests know: "auth" for unauthenticated).
const STATE = {
  connecting: ['connecting', 'Connecting…'], live: ['live', 'Live'], reconnecting: ['reconnecting', 'Reconnecting…'],
  offline: ['offline', 'Offline'], unauthenticated: ['auth', 'Signed out'], closed: ['closed', 'Disconnected'],
};

function onState(s) {
  if (!client) return;
  const [state, text] = STATE[s.status] || [s.status, s.status];
  const pill = $('#conn');
  pill.dataset.state = state;
  $('#conn-text').textContent = text;
  const why = s.error?.message ? ` (${s.error.message})` : '';
  pill.title = s.status === 'reconnecting'
    ? `Connection lost${why}. Retrying${s.retryAt ? ' ' + formatIn(s.retryAt - Date.now()) : ''}; click to retry now.`
    : s.status === 'live' ? 'Changes sync live with your other devices.'
      : s.status === 'offline' ? 'This device is offline. Changes are kept here and sent when the network returns.'
        : (s.error?.message || '');
  board.setConnection(s.status);
  if (s.status !== 'live') setPresence(null);
  switch (s.status) {
    case 'live':
      if (s.sessionId !== greetedSession) greeted(s);
      setPresence(client.presence.get());
      if (!$('#refresh-form').hidden && tokens && !tokens.expired(5 * 60000)) hideBanner();
      if ($('#banner').dataset.kind === 'notice') hideBanner();
      break;
    case 'reconnecting':
      if (s.error?.code === 4009) showBanner('Too many open tabs or devices for this account. Close one; retrying in a while.', { kind: 'notice' });
      break;
    case 'unauthenticated': {
      const code = s.error?.code;
      if (code === 4010) {
        signOut('You were signed out everywhere. Sign in again.');
        break;
      }
      if (code === 4003) {
        signOut('The new token belongs to another user. Sign in again.');
        break;
      }
      const expired = code === 4001 || (tokens && tokens.expired(5000)) || /expired/.test(s.error?.message || '');
      if (!expired && !everLive) {
        // Refused before it ever connected: a token for another server or secret.
        signOut('The server did not accept this token. Check that it was issued for this server.');
        break;
      }
      showBanner(!expired
        ? 'The server no longer accepts your token. Paste a new one to continue; your board is kept.'
        : `Your session expired${tokens ? ' at ' + formatTime(new Date(tokens.expiresAt)) : ''}. Paste a new token to continue; unsaved changes are kept.`,
      { kind: 'auth', form: true });
      break;
    }
  }
}

$('#conn').addEventListener('click', () => {
  const st = client?.connection.get().status;
  if (st === 'reconnecting' || st === 'closed') client.reconnect();
});

/**
 * The user's sessions online. Shown only while this device is live: while
 * it reconnects nobody knows who else is online, and "This device only"
 * would be a claim the page cannot back.
 */
function setPresence(p) {
  const el = $('#presence');
  if (!p || typeof p.online !== 'number' || p.online < 1 || client?.connection.get().status !== 'live') {
    el.hidden = true;
    delete el.dataset.online;
    return;
  }
  el.hidden = false;
  el.dataset.online = String(p.online);
  el.textContent = p.online === 1 ? 'This device only' : `${p.online} devices online`;
  el.title = (p.sessions || []).map((s) => `${s.device || 'device'} · since ${formatTime(new Date(s.connected_at))}`).join('\n');
}

// ------------------------------------------------------------ token expiry

/**
 * Renews the token a minute before it expires when the source can; a
 * fragment or pasted token cannot, so the page says when the session ends
 * and takes a new token in the banner (sent with auth.refresh, so the
 * socket stays open).
 */
function scheduleExpiry(at) {
  clearTimeout(expiryTimer);
  const line = $('#session-expiry');
  if (!Number.isFinite(at)) {
    line.textContent = 'Your session does not expire.';
    return;
  }
  line.textContent = `Session expires at ${formatTime(new Date(at))}.`;
  const lead = 5 * 60000;
  const wait = Math.max(0, at - lead - Date.now());
  // setTimeout's limit is 24.8 days; re-arm for anything longer.
  expiryTimer = setTimeout(() => (at - Date.now() > lead + 1000 ? scheduleExpiry(at) : expiring(at)),
    Math.min(wait, 2 ** 31 - 1));
}

function expiring(at) {
  // A fragment or pasted token cannot be renewed by the page: ask for one.
  showBanner(`Your session ends at ${formatTime(new Date(at))} (${formatIn(at - Date.now())}). Paste a new token to stay signed in.`,
    { kind: 'expiring', form: true });
}

$('#refresh-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#refresh-token');
  const raw = input.value.trim();
  const problem = raw ? checkToken(raw) : 'Paste a token first.';
  if (problem) {
    toast(problem, { kind: 'error' });
    return;
  }
  const newUser = tokenUser(decodeToken(raw));
  if (newUser !== userId) {
    // Another account: start over as that user.
    save(raw);
    start(new TokenSource(raw, 'pasted'));
    return;
  }
  input.value = '';
  if (client?.connection.get().status === 'live') {
    try {
      // The live socket takes the newer token (auth.refresh): it stays open.
      const reply = await client.request({ type: 'auth.refresh', token: raw });
      const exp = reply.expires_at;
      tokens.replace(raw);
      hideBanner();
      scheduleExpiry(Date.parse(exp));
      toast('Session extended.');
    } catch (err) {
      toast(`That token was not accepted: ${describeError(err)}`, { kind: 'error' });
    }
    return;
  }
  tokens.replace(raw);
  hideBanner();
  client?.reconnect(); // getToken() now returns the new token
});

function showBanner(text, { kind, form = false, action = null }) {
  const b = $('#banner');
  b.dataset.kind = kind;
  $('#banner-text').textContent = text;
  $('#refresh-form').hidden = !form;
  const btn = $('#banner-action');
  btn.hidden = !action;
  if (action) {
    btn.textContent = action[0];
    btn.onclick = action[1];
  }
  b.hidden = false;
}

function hideBanner() {
  $('#banner').hidden = true;
  $('#banner').dataset.kind = '';
}

// ------------------------------------------------------------ small screens

for (const btn of document.querySelectorAll('.view-btn')) {
  btn.addEventListener('click', () => {
    $('.layout').dataset.view = btn.dataset.view;
    for (const b of document.querySelectorAll('.view-btn')) b.setAttribute('aria-pressed', String(b === btn));
    if (btn.dataset.view === 'chat') $('#chat-input').focus();
  });
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && $('#account').open) {
    $('#account').open = false;
    $('#account summary').focus();
  }
});

// ------------------------------------------------------------ go

const first = initialToken();
if (!first) {
  showSignin();
} else if (checkToken(first.token)) {
  forget();
  showSignin(checkToken(first.token));
} else {
  start(first);
}

// The offline shell: registered at once, while the server that served this
// page is surely there (a registration that fails is logged by the browser).
registerOffline();

// Exposed for the browser tests and for poking around in the console.
window.tasksync = { get client() { return client; }, board, chat, reminders, h, toast };
