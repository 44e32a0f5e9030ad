// The assistant panel: the conversation list and history (REST), sending a
// message (client.chat.send), and the turn as it streams to every session
// of the user, through the SDK's chat streams: started, delta (text,
// appended as it comes), tool_call / tool_result (shown as they happen;
// their effect reaches the board through the ordinary task events), and
// done or error. Turns started on another device arrive through
// client.chat.turns. Stop cancels the turn's stream.
//
// The conversation on screen is remembered (localStorage, per user), so a
// reload reopens it.

import { $, h, toast, formatTime } from './dom.js';
import { describeError } from './board.js';
import { limits, checkMessage, showProblems } from './limits.js';

const TOOL_LABEL = {
  add_task: 'Add task', list_tasks: 'List tasks', complete_task: 'Complete task',
  update_task: 'Update task', delete_task: 'Delete task',
};

const SUGGESTIONS = ['add a task to buy groceries', 'what’s pending?', 'show me all my tasks'];

function parse(raw) {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string') return raw;
  try { return JSON.parse(raw); } catch { return raw; }
}

function describeArgs(name, raw) {
  const a = parse(raw) || {};
  if (typeof a !== 'object') return String(a);
  if (name === 'add_task') return a.title ? `“${a.title}”` : '';
  if (name === 'list_tasks') return a.status && a.status !== 'all' ? a.status : 'all';
  const parts = [];
  if (a.task_id) parts.push(`#${a.task_id}`);
  if (a.title) parts.push(`→ “${a.title}”`);
  return parts.join(' ');
}

function describeResult(raw) {
  const r = parse(raw);
  if (Array.isArray(r)) return `${r.length} task${r.length === 1 ? '' : 's'}`;
  if (r && typeof r === 'object') {
    if (r.error) return String(r.error);
    if (r.status) return `${r.status}${r.task_id ? ` #${r.task_id}` : ''}${r.title ? ` “${r.title}”` : ''}`;
  }
  return typeof r === 'string' ? r : 'done';
}

export class Chat {
  /**
   * @param {object} o
   * @param {(path: string, init?: object) => Promise<any>} o.api REST under /api/{user_id}
   */
  constructor({ api }) {
    this.client = null;
    this.off = null;
    this.api = api;
    this.log = $('#chat-log');
    this.input = $('#chat-input');
    this.stopBtn = $('#chat-stop');
    this.sendBtn = $('#chat-send');
    this.reset();
    $('#chat-form').addEventListener('submit', (e) => { e.preventDefault(); this.send(); });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener('input', () => this.checkInput());
    this.stopBtn.addEventListener('click', () => this.stop());
    $('#chat-new').addEventListener('click', () => { this.open(null); this.input.focus(); });
  }

  /** Follows client's chat streams (a new session). */
  attach(client) {
    this.detach();
    this.client = client;
    this.off = client.chat.turns.subscribe((stream) => this.follow(stream, null));
  }

  detach() {
    this.off?.();
    this.off = null;
    this.client = null;
  }

  reset() {
    this.conversations = []; // newest first
    this.active = null; // conversation id, or null for a new chat
    this.turns = new Map(); // turn id → {conv, el, text, calls, tools}
    this.streams = new Map(); // turn id → the SDK's stream of a turn this page follows
    this.running = new Map(); // conversation id → turn id
    this.loaded = false;
    this.reopened = false;
    this.log.replaceChildren();
    this.renderList();
    this.renderEmpty();
    this.updateControls();
  }

  /**
   * After every hello: our session id, and the conversation list. After a
   * reconnect, turns that ended while the socket was down (their chat.done
   * never reached us) are settled from what the server stored.
   */
  async connected() {
    const first = !this.loaded;
    this.loaded = true;
    const before = new Map(this.running);
    let list;
    try {
      list = await this.api(`/conversations?limit=${limits.conversations}`);
    } catch (err) {
      if (first) {
        this.loaded = false;
        toast(`Could not load conversations: ${err.message}`, { kind: 'error' });
      }
      return;
    }
    const known = new Set(list.map((c) => c.id));
    this.conversations = [...this.conversations.filter((c) => !known.has(c.id)), ...list];
    for (const c of list) if (c.active_turn_id) this.running.set(c.id, c.active_turn_id);
    const ended = [];
    for (const [conv, turn] of before) {
      const c = list.find((x) => x.id === conv);
      if ((!c || c.active_turn_id !== turn) && this.running.get(conv) === turn) {
        this.running.delete(conv);
        this.turns.delete(turn);
        ended.push(conv);
      }
    }
    this.renderList();
    this.updateControls();
    if (!this.reopened) {
      // After a reload: the conversation that was on screen, if it still exists.
      this.reopened = true;
      const last = Number(localStorage.getItem(this.key()) || 0);
      if (last && this.active === null && this.conversations.some((c) => c.id === last)) {
        this.open(last);
        return;
      }
    }
    if (this.active !== null && ended.includes(this.active)) this.open(this.active);
  }

  /** Where the open conversation is remembered: per user (a shared browser). */
  key() {
    return `tasksync.chat.${this.client?.userId ?? ''}`;
  }

  /** Remembers the conversation on screen (none: a new chat). */
  remember() {
    try {
      if (this.active === null) localStorage.removeItem(this.key());
      else localStorage.setItem(this.key(), String(this.active));
    } catch { /* private mode */ }
  }

  renderList() {
    const ul = $('#conversations');
    ul.replaceChildren(...this.conversations.map((c) => h('li', {},
      h('button.conv', {
        type: 'button', dataset: { id: String(c.id) }, 'aria-current': c.id === this.active ? 'true' : null,
        onclick: () => this.open(c.id),
      }, h('span.conv-title', {}, c.title || 'Conversation'),
      h('span.conv-time', {}, c.updated_at ? formatTime(new Date(c.updated_at)) : '')))));
    ul.parentElement.hidden = this.conversations.length === 0;
  }

  renderEmpty() {
    if (this.log.children.length) return;
    this.log.append(h('li.chat-empty', {},
      h('p', {}, 'Ask the assistant to add, find, complete or delete tasks. Changes show up on the board as they happen.'),
      h('div.suggestions', {}, ...SUGGESTIONS.map((s) => h('button.chip', {
        type: 'button', onclick: () => { this.input.value = s; this.input.focus(); },
      }, s)))));
  }

  /** Shows a conversation (null: a new one) with its stored messages. */
  async open(id) {
    this.active = id;
    this.remember();
    this.renderList();
    this.log.replaceChildren();
    // Turns of other conversations keep streaming into detached elements.
    for (const [tid, t] of this.turns) if (t.conv !== id) this.turns.delete(tid);
    this.updateControls();
    if (id === null) {
      this.renderEmpty();
      return;
    }
    let messages;
    try {
      messages = await this.api(`/conversations/${id}/messages?limit=${limits.messages}`);
    } catch (err) {
      toast(`Could not load the conversation: ${err.message}`, { kind: 'error' });
      return;
    }
    if (this.active !== id) return;
    const live = [...this.log.children]; // turns that started while loading
    this.log.replaceChildren();
    for (const m of messages) {
      if (m.role === 'user') this.log.append(this.userBubble(m.content));
      else if (m.role === 'assistant' && !this.turnShown(m.turn_id, live)) {
        const t = this.assistantBubble(m.turn_id);
        for (const c of m.tool_calls || []) this.toolCall(t, c.id, c.name, c.arguments, c.result, c.is_error);
        t.text.textContent = m.content;
        this.finish(t, m.status, m.error);
      }
    }
    for (const el of live) this.log.append(el);
    if (this.running.has(id) && !this.turns.has(this.running.get(id))) {
      // An answer is being written (elsewhere); its next deltas land here.
      this.assistantBubble(this.running.get(id), id);
    }
    this.scroll(true);
  }

  turnShown(turnId, els) {
    return els.some((el) => el.dataset.turn === turnId);
  }

  userBubble(text) {
    const el = h('li.msg.msg-user', {}, h('div.bubble', {}, text));
    return el;
  }

  assistantBubble(turnId, conv = this.active) {
    const text = h('div.msg-text');
    const tools = h('ul.tool-calls', { hidden: true });
    const status = h('div.msg-status', { hidden: true });
    const el = h('li.msg.msg-assistant', { dataset: { turn: turnId || '' } },
      h('div.msg-author', {}, 'Assistant'), tools, text, status);
    const t = { conv, el, text, tools, status, calls: new Map() };
    if (turnId) this.turns.set(turnId, t);
    this.clearEmpty();
    this.log.append(el);
    return t;
  }

  clearEmpty() {
    this.log.querySelector('.chat-empty')?.remove();
  }

  toolCall(t, callId, name, args, result, isError) {
    t.tools.hidden = false;
    let row = t.calls.get(callId);
    if (!row) {
      const res = h('span.tool-result', {}, 'running…');
      row = { el: h('li.tool', { dataset: { state: 'running', name } },
        h('span.tool-name', {}, TOOL_LABEL[name] || name),
        h('span.tool-args', {}, describeArgs(name, args)), res), res };
      t.calls.set(callId, row);
      t.tools.append(row.el);
    }
    if (result !== undefined && result !== null) {
      row.el.dataset.state = isError ? 'error' : 'done';
      row.res.textContent = describeResult(result);
    }
  }

  finish(t, status, error) {
    t.el.dataset.status = status;
    for (const row of t.calls.values()) {
      if (row.el.dataset.state === 'running') { row.el.dataset.state = 'skipped'; row.res.textContent = 'not run'; }
    }
    if (status === 'cancelled') {
      t.status.hidden = false;
      t.status.className = 'msg-status';
      t.status.textContent = 'Stopped.';
    } else if (status === 'error') {
      t.status.hidden = false;
      t.status.className = 'msg-status msg-error';
      t.status.setAttribute('role', 'alert');
      t.status.textContent = error?.message ? `The assistant failed: ${error.message}` : 'The assistant failed.';
    }
  }

  scroll(force = false) {
    const l = this.log;
    if (force || l.scrollHeight - l.scrollTop - l.clientHeight < 120) l.scrollTop = l.scrollHeight;
  }

  updateControls() {
    const running = this.active !== null && this.running.has(this.active);
    this.stopBtn.hidden = !running;
    this.sendBtn.disabled = running;
  }

  // ------------------------------------------------------------ sending

  /** Says at once when the message is over the server's limit; returns whether it fits. */
  checkInput() {
    const problem = checkMessage(this.input.value.trim());
    return !showProblems($('#chat-error'), { message: this.input }, problem ? { message: problem } : {});
  }

  send() {
    const message = this.input.value.trim();
    if (!message || !this.client) return;
    if (!this.checkInput()) {
      this.input.focus();
      return;
    }
    if (this.active !== null && this.running.has(this.active)) {
      toast('The assistant is still answering: wait, or stop it first.');
      return;
    }
    this.clearEmpty();
    const bubble = this.userBubble(message);
    bubble.classList.add('is-pending');
    this.log.append(bubble);
    this.input.value = '';
    this.scroll(true);
    const stream = this.client.chat.send(message, this.active !== null ? { conversationId: this.active } : {});
    this.follow(stream, bubble);
  }

  /** Shows a turn's events as they come; bubble is this page's message (null: a turn from elsewhere). */
  async follow(stream, bubble) {
    try {
      for await (const ev of stream) {
        const f = { ...ev, type: `chat.${ev.type}` };
        // A turn already running when this page connected comes without its start.
        this.streams.set(f.turn_id, stream);
        if (ev.type === 'started') this.started(f, bubble);
        else this.handle(f);
        if (ev.type === 'done' || ev.type === 'error') this.streams.delete(f.turn_id);
      }
    } catch (err) {
      if (stream.turnId) {
        // The socket went away during the turn: it goes on on the server;
        // the next hello settles it from what the server stored.
        this.streams.delete(stream.turnId);
        return;
      }
      if (!bubble) return;
      bubble.classList.remove('is-pending');
      bubble.classList.add('is-failed');
      bubble.append(h('p.msg-error', { role: 'alert' }, `Not sent: ${describeError(err)}`));
      if (!this.input.value) this.input.value = stream.message;
    }
  }

  stop() {
    if (this.active === null) return;
    const stream = this.streams.get(this.running.get(this.active));
    const done = stream
      ? stream.cancel()
      : this.client?.request({ type: 'chat.cancel', conversation_id: this.active }); // a turn this page did not see start
    done?.catch((err) => {
      toast(`Could not stop the answer: ${describeError(err)}`, { kind: 'error' });
    });
  }

  // ------------------------------------------------------------ the stream

  handle(f) {
    switch (f.type) {
      case 'chat.delta': {
        const t = this.turnFor(f);
        if (!t) return;
        t.text.append(f.text);
        this.scroll();
        return;
      }
      case 'chat.tool_call': {
        const t = this.turnFor(f);
        if (t) this.toolCall(t, f.call_id, f.name, f.arguments);
        return;
      }
      case 'chat.tool_result': {
        const t = this.turnFor(f);
        if (t) this.toolCall(t, f.call_id, f.name, null, f.result, f.is_error);
        return;
      }
      case 'chat.done':
      case 'chat.error': return this.ended(f);
    }
  }

  /** A turn began: bubble is this page's message when the turn is its own. */
  started(f, bubble) {
    this.running.set(f.conversation_id, f.turn_id);
    let c = this.conversations.find((x) => x.id === f.conversation_id);
    if (!c) c = { id: f.conversation_id, title: f.title };
    c.updated_at = new Date().toISOString();
    this.conversations = [c, ...this.conversations.filter((x) => x !== c)];
    // Our own message is on screen already; one sent from another device is not.
    const ours = !!bubble;
    if (ours) bubble.classList.remove('is-pending');
    if (ours && this.active === null) {
      this.active = f.conversation_id;
      this.remember();
    }
    this.renderList();
    if (f.conversation_id === this.active) {
      if (!ours) this.log.append(this.userBubble(f.message));
      this.clearEmpty();
      const t = this.assistantBubble(f.turn_id, f.conversation_id);
      t.el.classList.add('is-streaming');
      this.scroll(true);
    }
    this.updateControls();
  }

  /** The turn's bubble; one is made when the turn began before this page looked. */
  turnFor(f) {
    let t = this.turns.get(f.turn_id);
    if (!t && f.conversation_id === this.active) {
      t = this.assistantBubble(f.turn_id, f.conversation_id);
      t.el.classList.add('is-streaming');
    }
    return t;
  }

  ended(f) {
    if (this.running.get(f.conversation_id) === f.turn_id) this.running.delete(f.conversation_id);
    const t = this.turnFor(f);
    if (t) {
      t.el.classList.remove('is-streaming');
      // The final text is authoritative (deltas may have been merged or missed).
      if (t.text.textContent !== f.text) t.text.textContent = f.text;
      for (const c of f.tool_calls || []) this.toolCall(t, c.id, c.name, c.arguments, c.result, c.is_error);
      this.finish(t, f.type === 'chat.error' ? 'error' : f.status, f.type === 'chat.error' ? f : null);
      this.turns.delete(f.turn_id);
      this.scroll();
    }
    this.updateControls();
  }
}
