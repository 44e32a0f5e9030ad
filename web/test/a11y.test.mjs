// Accessibility of the board (issue 11): axe-core run in Chromium on a board
// with tasks in every state, the assistant with a conversation, toasts,
// presence of two devices and the account menu, at 1280 and 375 px wide; no
// serious or critical violation. And focus rings: every kind of control
// shows one when focused from the keyboard, at 3:1 or better against what
// is around it (WCAG 1.4.11).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import {
  Instance, token, rest, launchBrowser, newPage, openBoard, live, row, waitFor,
} from './harness.mjs';
import { startModel } from './model.mjs';

// The board's Content-Security-Policy (script-src 'self') refuses an inline
// <script> (page.addScriptTag); code evaluated through the DevTools protocol
// is not subject to it.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let model;
let a;
let b;
let browser;
// A user of its own: the board's tests (board.test.mjs) share the database and count alice's tasks.
const ada = { id: 'ada' };

function dayFromNow(days) {
  return new Date(Date.now() + days * 86400000).toISOString().slice(0, 10);
}

/**
 * axe-core on the page as it is now: the serious and critical violations,
 * one line per element ("rule: selector: summary"), so that a failure says
 * what to fix.
 */
async function axe(page, what, present = []) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(`${axeSource}\n;undefined`);
  const { missing, result } = await page.evaluate(async (sels) => ({
    missing: sels.filter((s) => ![...document.querySelectorAll(s)].some((e) => e.checkVisibility())), // what this run is meant to cover
    result: await window.axe.run(document, { resultTypes: ['violations'] }),
  }), present);
  assert.deepEqual(missing, [], `${what}: not on screen when axe-core ran`);
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  return bad.flatMap((v) => v.nodes.map((n) => `${what}: ${v.id} (${v.impact}): ${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s+/g, ' ').slice(0, 220)}`));
}

/** No transition or animation half-way (a fading colour is not the one a user reads). */
async function settle(p) {
  await p.mouse.move(2, 2);
  await p.waitForFunction(() => document.getAnimations().every((an) => an.playState !== 'running' || an.effect?.getTiming().iterations === Infinity));
}

/** A change the server refuses (a lone surrogate in the title): the board undoes it and shows an error toast. */
async function refusedChange(p, title) {
  await row(p, title).locator('.task-edit').click();
  const input = p.locator('#tasks .editor input[id$="-title"]');
  await input.evaluate((el, t) => { el.value = `${t} \ud800`; }, title);
  await input.press('Enter');
  await p.locator('.toast-error').first().waitFor();
  await row(p, title).and(p.locator(':not(.is-pending)')).waitFor();
}

before(async () => {
  model = await startModel();
  a = new Instance('a11y-a', { OPENAI_BASE_URL: model.url, OPENAI_MODEL: 'test-model' });
  b = new Instance('a11y-b', { OPENAI_BASE_URL: model.url, OPENAI_MODEL: 'test-model' });
  await Promise.all([a.start(), b.start()]);
  ada.token = token(ada.id);
  browser = await launchBrowser();
  const seed = [
    { title: 'Renew passport', priority: 'low', tags: ['personal'], due_date: dayFromNow(-2) },
    { title: 'Book flights for the offsite', description: 'Lisbon, 14-16 May. Check the team calendar first.', priority: 'medium', tags: ['travel', 'work'], due_date: dayFromNow(9) },
    { title: 'Review pull request #142', priority: 'high', tags: ['work'], due_date: dayFromNow(1) },
    { title: 'Draft Q3 roadmap', description: 'Goals, milestones and staffing for the next quarter.', priority: 'high', tags: ['work'], due_date: dayFromNow(4) },
    { title: 'Call the dentist', priority: 'medium' },
  ];
  for (const t of seed) await rest(a, ada.token, 'POST', '/api/ada/tasks', t);
  // Done tasks of each priority, with a description, tags and due dates.
  for (const [title, priority, extra] of [
    ['Pay the electricity bill', 'medium', { tags: ['home'], due_date: dayFromNow(-1) }],
    ['Water the ferns', 'high', { description: 'The ones by the window.', tags: ['home', 'garden'] }],
    ['Return the library books', 'low', { due_date: dayFromNow(3) }],
  ]) {
    const t = await rest(a, ada.token, 'POST', '/api/ada/tasks', { title, priority, ...extra });
    await rest(a, ada.token, 'PATCH', `/api/ada/tasks/${t.id}/complete`, { completed: true });
  }
});

after(async () => {
  await browser?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await model?.close();
});

test('axe-core: no serious or critical violation at 1280 and 375 px, in every state of the board', async () => {
  const found = [];

  // Wide: two devices (presence), a conversation with a tool call, an answer streaming, toasts.
  const pa = await openBoard(await newPage(browser, { width: 1280, height: 860 }), a, ada.token);
  const pb = await openBoard(await newPage(browser, { width: 375, height: 740 }), b, ada.token);
  await pa.locator('#presence[data-online="2"]').waitFor();
  await pb.locator('#presence[data-online="2"]').waitFor({ state: 'attached' }); // not shown at 375 px

  await pa.locator('#chat-input').fill('add a task to buy groceries');
  await pa.locator('#chat-input').press('Enter');
  await pa.locator('#chat-log .msg-assistant[data-status="complete"] .tool[data-state="done"]').waitFor();
  await row(pa, 'buy groceries').waitFor();
  await settle(pa);
  found.push(...await axe(pa, '1280 board and chat', [
    '#presence[data-online="2"]', '.task.is-done', '.prio[data-priority="high"]', '.prio[data-priority="medium"]',
    '.prio[data-priority="low"]', '.tag', '.due.overdue', '.task-desc', '.tool[data-state="done"]', '.conv[aria-current="true"]',
  ]));

  // An answer streaming (Stop shown), a second message refused while it runs (an info toast), a refused change (an error toast).
  await pa.locator('#chat-input').fill('tell me a long story');
  await pa.locator('#chat-input').press('Enter');
  await pa.locator('#chat-stop').waitFor();
  await refusedChange(pa, 'Renew passport');
  await pa.locator('#chat-input').fill('and another thing');
  await pa.locator('#chat-input').press('Enter');
  await pa.locator('.toast-info').waitFor();
  await settle(pa);
  found.push(...await axe(pa, '1280 streaming, toasts', ['.toast-info', '.toast-error', '#chat-stop', '.msg-assistant.is-streaming']));
  await pa.locator('#chat-stop').click();
  await pa.locator('#chat-log .msg-assistant[data-status="cancelled"]').waitFor();

  // An open editor (with the note that the task changed elsewhere) and the account menu.
  await row(pa, 'Draft Q3 roadmap').locator('.task-edit').click();
  const [roadmap] = await rest(b, ada.token, 'GET', '/api/ada/tasks?q=roadmap');
  await rest(b, ada.token, 'PATCH', `/api/ada/tasks/${roadmap.id}`, { description: 'Changed on another device.' });
  await pa.locator('#tasks .editor .editor-note').waitFor();
  await pa.locator('#account summary').click();
  await settle(pa);
  found.push(...await axe(pa, '1280 editor, account menu', ['.editor-note', '.account-menu', '.msg-assistant[data-status="cancelled"]']));
  await pa.keyboard.press('Escape');
  await pa.locator('#account summary').click();

  // Narrow: the board (with a toast), the account menu, then the assistant panel.
  await refusedChange(pb, 'Book flights for the offsite');
  await settle(pb);
  found.push(...await axe(pb, '375 board', ['.toast-error', '#account summary', '.task.is-done']));
  await pb.locator('#account summary').click();
  found.push(...await axe(pb, '375 account menu', ['.account-menu']));
  await pb.locator('#account summary').click();
  await pb.locator('.view-btn[data-view="chat"]').click();
  await pb.locator('#conversations .conv', { hasText: 'add a task to buy groceries' }).click();
  await pb.locator('#chat-log .msg-assistant[data-status="complete"]').first().waitFor();
  await settle(pb);
  found.push(...await axe(pb, '375 assistant', ['#chat-log .tool']));
  await pb.locator('.view-btn[data-view="board"]').click();

  // Disconnected: the reconnecting badge and a change waiting to be sent.
  await a.stop();
  try {
    await pa.locator('#conn[data-state="reconnecting"]').waitFor();
    await pa.locator('#new-title').fill('Written while offline');
    await pa.locator('#new-title').press('Enter');
    await row(pa, 'Written while offline').and(pa.locator('.is-pending')).waitFor();
    await settle(pa);
    found.push(...await axe(pa, '1280 reconnecting, pending', ['#conn[data-state="reconnecting"]', '.task.is-pending']));
  } finally {
    await a.start();
  }
  await live(pa, 30000);

  // Filters with no match: the empty state.
  await pb.locator('#search').fill('nothing matches this');
  await pb.locator('#empty').waitFor();
  found.push(...await axe(pb, '375 empty', ['#empty']));

  assert.deepEqual(found, [], `${found.length} serious or critical violations:\n${found.join('\n')}`);
  await pa.close_();
  await pb.close_();
});

test('axe-core: the time-aware parts (quick-add preview, reminder alert, Undo toast, history panel) at 1280 and 375 px', async () => {
  const found = [];
  const tia = { id: 'tia', token: token('tia') };
  await rest(a, tia.token, 'POST', '/api/tia/tasks', {
    title: 'Team standup', due_at: '2030-01-07T08:30:00Z', tz: 'Europe/Berlin', recurrence: 'FREQ=WEEKLY;BYDAY=MO,WE,FR',
    remind_at: '2030-01-07T08:20:00Z',
  });
  await rest(a, tia.token, 'POST', '/api/tia/tasks', { title: 'Throw away the old plan' });
  for (const width of [1280, 375]) {
    const p = await openBoard(await newPage(browser, { width, height: 860 }), b, tia.token);
    // A reminder's alert (fired by the server 2 s from now), with its snooze buttons.
    await rest(a, tia.token, 'POST', '/api/tia/tasks', { title: `Stretch your legs (${width})`, remind_at: new Date(Date.now() + 2000).toISOString() });
    await p.locator('#reminders .reminder[role="alert"]', { hasText: `(${width})` }).waitFor({ timeout: 20000 });
    // The quick-add preview and the details with the time, reminder and repeat fields.
    await p.locator('#new-title').fill('Pay rent every month on the 1st !high #home');
    await p.locator('#new-understood [data-field="recurrence"]').waitFor();
    await p.locator('#new-more').click();
    await p.locator('#new-repeat').selectOption('custom');
    // An Undo toast.
    await row(p, 'Throw away the old plan').locator('.task-delete').click();
    await p.locator('.toast .toast-action').waitFor();
    await settle(p);
    found.push(...await axe(p, `${width} quick-add, reminder, undo`, [
      '#new-understood .chip-understood', '.reminder .btn', '.toast-action', '.task .repeat', '.task .remind', '#new-rrule', '#new-due-time',
    ]));
    await p.locator('.toast .toast-action').click(); // Undo: the task is back
    await row(p, 'Throw away the old plan').waitFor();
    // The history panel of a task.
    await row(p, 'Team standup').locator('.task-history').click();
    await p.locator('#history .history-item').first().waitFor();
    found.push(...await axe(p, `${width} history`, ['#history .history-item', '#history-close']));
    await p.keyboard.press('Escape');
    await p.close_();
  }
  assert.deepEqual(found, [], `${found.length} serious or critical violations:\n${found.join('\n')}`);
});

test('sign-in page: no serious or critical violation at 1280 and 375 px', async () => {
  const found = [];
  for (const width of [1280, 375]) {
    const p = await newPage(browser, { width, height: 800 });
    await p.goto(`${b.url}/`);
    await p.locator('#signin').waitFor();
    await p.locator('#signin-token').fill('not a token');
    await p.locator('#signin-token').press('Enter');
    await p.locator('#signin-error').waitFor();
    found.push(...await axe(p, `${width} sign-in`, ['#signin-error']));
    await p.close_();
  }
  assert.deepEqual(found, [], `${found.length} serious or critical violations:\n${found.join('\n')}`);
});

/**
 * Every control in root, focused from the keyboard, shows a ring: an outline
 * of 2 px or more (not a box-shadow, which forced-colours modes drop) whose
 * colour has 3:1 or more against the background around the control.
 * Returns a problem per control that fails, and the controls checked.
 */
async function focusRings(p, root = 'body') {
  // A key press first: focus after keyboard use is :focus-visible, as after Tab.
  await p.keyboard.press('Shift');
  const targets = await p.evaluate((r) => {
    for (const e of document.querySelectorAll('[data-ring-probe]')) delete e.dataset.ringProbe;
    const sel = 'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])';
    return [...document.querySelector(r).querySelectorAll(sel)].filter((el) => el.checkVisibility({ visibilityProperty: true }) && !el.disabled)
      .map((el, i) => { el.dataset.ringProbe = String(i); return i; });
  }, root);
  assert.ok(targets.length >= 1, `no control in ${root}`);
  const problems = [];
  const checked = [];
  for (const i of targets) {
    const el = p.locator(`[data-ring-probe="${i}"]`);
    if (!(await el.count())) continue; // gone meanwhile (a list redrawn by a live change)
    await el.focus();
    const r = await el.evaluate((node) => {
      const parse = (c) => {
        const m = c.match(/rgba?\(([^)]+)\)/);
        if (!m) return null;
        const [r, g, b, al = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
        return { r, g, b, a: al };
      };
      const over = (top, bottom) => ({
        r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a), b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
      });
      // The opaque colour behind an element: its ancestors' backgrounds, composed.
      const behind = (start) => {
        const layers = [];
        for (let e = start; e; e = e.parentElement) {
          const c = parse(getComputedStyle(e).backgroundColor);
          if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
        }
        let out = { r: 255, g: 255, b: 255, a: 1 };
        for (const c of layers.reverse()) out = over(c, out);
        return out;
      };
      const lum = ({ r, g, b }) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const ratio = (x, y) => { const [hi, lo] = [lum(x), lum(y)].sort((m, n) => n - m); return (hi + 0.05) / (lo + 0.05); };
      // A visually hidden input draws its ring on the label text beside it (the status switch).
      const ringEl = getComputedStyle(node).opacity === '0' && node.nextElementSibling ? node.nextElementSibling : node;
      const s = getComputedStyle(ringEl);
      const name = `${node.tagName.toLowerCase()}${node.id ? `#${node.id}` : ''}.${[...node.classList].join('.')} "${(node.textContent || node.value || node.getAttribute('aria-label') || '').trim().slice(0, 30)}"`;
      if (!node.matches(':focus-visible')) return { name, problem: 'not :focus-visible after focus from the keyboard' };
      const bg = behind(ringEl.parentElement);
      if (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) {
        const c = parse(s.outlineColor);
        const k = ratio(over(c, bg), bg);
        return { name, ratio: k, problem: k < 3 ? `outline ${s.outlineColor} on ${JSON.stringify(bg)}: ${k.toFixed(2)}:1` : null };
      }
      return { name, problem: `no focus ring (outline ${s.outlineStyle} ${s.outlineWidth}, box-shadow ${s.boxShadow})` };
    });
    checked.push(r.name);
    if (r.problem) problems.push(`${r.name}: ${r.problem}`);
  }
  return { problems, checked };
}

test('focus rings: every control shows one at 3:1 or better against its background', async () => {
  const p = await openBoard(await newPage(browser, { width: 1280, height: 860 }), b, ada.token);
  // Controls of every kind on screen: a task's editor, the composer's details, a conversation, an error toast.
  await p.locator('#new-more').click();
  await p.locator('#chat-input').fill('hello');
  await p.locator('#chat-input').press('Enter');
  await p.locator('#chat-log .msg-assistant[data-status="complete"]').waitFor();
  await p.locator('#conversations .conv').first().waitFor();
  const first = await focusRings(p);
  await row(p, 'Review pull request #142').locator('.task-edit').click();
  const second = await focusRings(p, '#tasks');
  await p.locator('#tasks .editor button', { hasText: 'Cancel' }).click();
  await refusedChange(p, 'Call the dentist'); // an error toast (dark): its close button
  const third = await focusRings(p, '#toasts');
  const problems = [...first.problems, ...second.problems, ...third.problems];
  assert.deepEqual(problems, [], problems.join('\n'));
  // Every kind of control was among those checked.
  const checked = [...first.checked, ...second.checked, ...third.checked].join('\n');
  for (const kind of ['a.skip-link', 'button#conn', 'summary', 'input#new-title', 'select#new-priority', 'textarea#new-description',
    'input#new-due', 'input. "all"', '.task-check', '.task-edit', '.task-delete', 'input#edit-', 'button.conv', 'ol#chat-log',
    'button#chat-send', 'button.toast-close', 'btn-primary', 'btn-ghost']) {
    assert.ok(checked.includes(kind), `no ${kind} among the controls checked:\n${checked}`);
  }
  await p.close_();
});
