// tasksync in the browser. The parts:
//
//   auth.js    the token: from /#token=... or pasted, kept in sessionStorage
//   socket.js  the one socket: requests and replies, close codes, reconnect
//              with backoff and jitter, resume with ?since=<last seq>
//   store.js   the task set: events applied by seq, paged snapshots, optimistic
//              changes with rollback, conflicts
//   board.js   the board: create, edit, complete, delete, filter, sort
//   chat.js    the assistant panel: conversations, streaming answers
//
// This file wires them together and owns the page's chrome: sign-in and
// sign-out, the connection indicator, presence and the session banner.

import { $, h, toast, formatTime, formatIn } from './dom.js';
import { initialToken, TokenSource, checkToken, forget, save, tokenUser, decodeToken } from './auth.js';
import { Connection, DisconnectedError, CloseCodes } from './socket.js';
import { TaskStore } from './store.js';
import { Board, describeError } from './board.js';
import { Chat } from './chat.js';

const store = new TaskStore();
let tokens = null;
let conn = null;
let userId = '';
let expiryTimer = 0;

/** What Board and Chat talk to: whichever connection is current. */
const client = {
  request: (frame, opts) => (conn ? conn.request(frame, opts) : Promise.reject(new DisconnectedError())),
};

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

const board = new Board({ store, conn: client });
const chat = new Chat({ conn: client, api });

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

function signOut(reason) {
  if (conn) conn.stop();
  conn = null;
  forget();
  tokens = null;
  clearTimeout(expiryTimer);
  store.reset();
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
  if (userId && source.userId !== userId) {
    store.reset();
    chat.reset();
  }
  tokens = source;
  userId = source.userId;
  showUser(userId);
  $('#signin').hidden = true;
  $('#app').hidden = false;
  document.title = 'tasksync';
  hideBanner();
  conn = new Connection({
    tokens,
    since: () => store.seq,
    onHello,
    onFrame,
    onState,
    probe,
  });
  conn.start();
}

function showUser(id) {
  $('#user-id').textContent = id;
  $('#user-id-full').textContent = id;
  $('#avatar').textContent = (id[0] || '?').toUpperCase();
}

function onHello(hello) {
  store.dropPartial(); // pages of the last socket's snapshot will not be continued on this one
  userId = hello.user_id;
  showUser(userId);
  scheduleExpiry(hello.token_expires_at ? Date.parse(hello.token_expires_at) : Infinity);
  client.request({ type: 'presence.list' }).then(setPresence, () => setPresence(null));
  chat.connected(hello);
}

function onFrame(f) {
  switch (f.type) {
    case 'task.created':
    case 'task.updated':
    case 'task.deleted':
    case 'snapshot':
      if (store.applyFrame(f) === 'gap') {
        // Cannot happen with a conforming server; recover rather than guess.
        // (seq is still -1 before the first snapshot: that asks for one.)
        client.request({ type: 'sync', since: store.seq }).catch(() => {});
      }
      return;
    case 'presence':
      setPresence(f);
      return;
    case 'error':
      if (f.code !== 'rate_limited') toast(`Server: ${f.message}`, { kind: 'error' });
      return;
    default:
      if (f.type.startsWith('chat.')) chat.handle(f);
  }
}

/** A REST call that tells a refused token (401) from a server that is down. */
async function probe() {
  try {
    const res = await fetch(`/api/${encodeURIComponent(userId)}/tasks?limit=1`, {
      headers: { Authorization: `Bearer ${tokens.token}` },
    });
    return res.status === 401 ? 'rejected' : 'accepted';
  } catch {
    return 'unreachable';
  }
}

// ------------------------------------------------------------ connection state

const STATE_TEXT = {
  connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline',
  auth: 'Signed out', 'signed-out': 'Signed out', closed: 'Disconnected',
};

function onState(s) {
  const pill = $('#conn');
  pill.dataset.state = s.state;
  $('#conn-text').textContent = STATE_TEXT[s.state] || s.state;
  const why = s.code ? ` (${CloseCodes[s.code] || 'code ' + s.code})` : '';
  pill.title = s.state === 'reconnecting'
    ? `Connection lost${why}. Retrying${s.retryAt ? ' ' + formatIn(s.retryAt - Date.now()) : ''}; click to retry now.`
    : s.state === 'live' ? 'Changes sync live with your other devices.' : (s.reason || '');
  switch (s.state) {
    case 'live':
      if (!$('#refresh-form').hidden && tokens && !tokens.expired(5 * 60000)) hideBanner();
      if ($('#banner').dataset.kind === 'closed' || $('#banner').dataset.kind === 'notice') hideBanner();
      break;
    case 'reconnecting':
      if (s.reason && s.reason !== 'connecting') showBanner(s.reason, { kind: 'notice' });
      break;
    case 'auth':
      if (s.reason === 'rejected' && !conn?.hello) {
        // Refused before it ever connected: a token for another server or secret.
        signOut('The server did not accept this token. Check that it was issued for this server.');
        break;
      }
      setPresence(null);
      showBanner(s.reason === 'rejected'
        ? 'The server no longer accepts your token. Paste a new one to continue; your board is kept.'
        : `Your session expired${tokens ? ' at ' + formatTime(new Date(tokens.expiresAt)) : ''}. Paste a new token to continue; unsaved changes are kept.`,
      { kind: 'auth', form: true });
      break;
    case 'signed-out':
      signOut(s.reason);
      break;
    case 'closed':
      if (conn && !conn.stopped) showBanner(s.reason || 'Disconnected.', { kind: 'closed', action: ['Reconnect', () => conn?.connectNow()] });
      break;
  }
}

$('#conn').addEventListener('click', () => {
  if (conn && (conn.state === 'reconnecting' || conn.state === 'closed')) conn.connectNow();
});

function setPresence(p) {
  const el = $('#presence');
  if (!p || typeof p.online !== 'number') {
    el.hidden = true;
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
  const lead = tokens.canRefresh ? 60000 : 5 * 60000;
  const wait = Math.max(0, at - lead - Date.now());
  // setTimeout's limit is 24.8 days; re-arm for anything longer.
  expiryTimer = setTimeout(() => (at - Date.now() > lead + 1000 ? scheduleExpiry(at) : expiring(at)),
    Math.min(wait, 2 ** 31 - 1));
}

async function expiring(at) {
  if (tokens.canRefresh) {
    try {
      const fresh = await tokens.refresh();
      const exp = await conn.refreshToken(fresh);
      tokens.replace(fresh);
      scheduleExpiry(Date.parse(exp));
      return;
    } catch { /* fall through to asking */ }
  }
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
    if (conn) conn.stop();
    start(new TokenSource(raw, 'pasted'));
    return;
  }
  input.value = '';
  if (conn && conn.state === 'live') {
    try {
      const exp = await conn.refreshToken(raw);
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
  conn?.connectNow();
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

// Exposed for the browser tests and for poking around in the console.
window.tasksync = { store, get conn() { return conn; }, board, chat, h };
