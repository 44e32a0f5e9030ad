// The server's limits on what a user writes, and the page sizes the chat
// panel asks for. They are stated once, as constants of the Go packages
// that enforce them (tasks.MaxTitle, chat.MaxMessageRunes, ...); web/embed.go
// writes them into the page (<script type="application/json" id="limits">)
// and this module reads them. The board checks them before sending, so that
// a user learns of a too-long title with a message next to it, not from a
// refused change.
//
// Lengths count characters as the server does: Unicode code points after
// trimming. (The maxlength attribute counts UTF-16 units, which would stop
// a title of 150 emoji that the server accepts; it also cuts a paste short
// without a word. The fields carry no maxlength for these reasons.)

function read() {
  const el = document.getElementById('limits');
  let v;
  try {
    v = JSON.parse(el?.textContent || '');
  } catch { /* reported below */ }
  if (!v || typeof v !== 'object' || !Number.isInteger(v.max_title)) {
    throw new Error('the page carries no limits: index.html must be served by the tasksync server (web/embed.go)');
  }
  return Object.freeze(v);
}

/**
 * @type {Readonly<{max_title: number, max_description: number, max_tags: number, max_tag: number,
 *   max_chat_message: number, conversations: number, messages: number}>}
 */
export const limits = read();

/** Characters as the server counts them (code points, not UTF-16 units). */
export function chars(s) {
  return [...String(s)].length;
}

// The messages name the limit, not the current length, so that a message
// shown while typing stays the same text (a live region announces every
// change of its text).

/**
 * Checks the fields of a task as they would be sent (title and description
 * trimmed, tags parsed): {title?, description?, tags?} with one message
 * each; empty when all fit. Only fields present are checked.
 */
export function checkTask(fields) {
  const bad = {};
  if (typeof fields.title === 'string' && chars(fields.title) > limits.max_title) {
    bad.title = `The title is too long: at most ${limits.max_title} characters.`;
  }
  if (typeof fields.description === 'string' && chars(fields.description) > limits.max_description) {
    bad.description = `The description is too long: at most ${limits.max_description} characters.`;
  }
  if (Array.isArray(fields.tags)) {
    const tooLong = fields.tags.find((t) => chars(t) > limits.max_tag);
    if (fields.tags.length > limits.max_tags) {
      bad.tags = `Too many tags: at most ${limits.max_tags}.`;
    } else if (tooLong) {
      const shown = [...tooLong].slice(0, 20).join('') + '…';
      bad.tags = `The tag “${shown}” is too long: at most ${limits.max_tag} characters per tag.`;
    }
  }
  return bad;
}

/** Checks a message to the assistant (trimmed): a message, or '' when it fits. */
export function checkMessage(text) {
  return chars(text) > limits.max_chat_message
    ? `The message is too long: at most ${limits.max_chat_message} characters.`
    : '';
}

/**
 * Shows the problems of the named inputs ({field: element}) in box:
 * marks each bad input aria-invalid and lists their messages in order.
 * Returns the first bad input, or null when there is none.
 */
export function showProblems(box, inputs, bad) {
  let first = null;
  const messages = [];
  for (const [field, el] of Object.entries(inputs)) {
    if (bad[field]) {
      el.setAttribute('aria-invalid', 'true');
      messages.push(bad[field]);
      first ??= el;
    } else {
      el.removeAttribute('aria-invalid');
    }
  }
  const text = messages.join(' ');
  if (box.textContent !== text) box.textContent = text;
  box.hidden = !text;
  return first;
}
