// The board's time helpers (web/static/js/when.js) in Node: repeat rules put
// in words, and the fields sent for a due day and time typed in the form.
// (Reading dates written in words is the server's parser's job, not these.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRule, repeatChoice, repeatRule, dueFields, dueInputs, dateOnly } from '../static/js/when.js';

test('repeat rules in words', () => {
  const cases = [
    ['FREQ=DAILY', 'every day'],
    ['FREQ=DAILY;INTERVAL=3', 'every 3 days'],
    ['FREQ=WEEKLY', 'every week'],
    ['FREQ=WEEKLY;BYDAY=MO', 'every Monday'],
    ['RRULE:FREQ=WEEKLY;BYDAY=MO', 'every Monday'],
    ['FREQ=WEEKLY;BYDAY=MO,WE,FR', 'every Mon, Wed and Fri'],
    ['FREQ=WEEKLY;BYDAY=FR,MO,WE', 'every Mon, Wed and Fri'],
    ['FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', 'every weekday'],
    ['FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR', 'every weekday'],
    ['FREQ=WEEKLY;INTERVAL=2;BYDAY=FR', 'every 2 weeks on Friday'],
    ['FREQ=MONTHLY;BYMONTHDAY=1', 'every month on the 1st'],
    ['FREQ=MONTHLY;BYMONTHDAY=22', 'every month on the 22nd'],
    ['FREQ=MONTHLY;BYMONTHDAY=-1', 'every month on the last day'],
    ['FREQ=MONTHLY;BYDAY=1MO', 'every month on the first Monday'],
    ['FREQ=MONTHLY;BYDAY=-1FR', 'every month on the last Friday'],
    ['FREQ=YEARLY', 'every year'],
    ['FREQ=DAILY;COUNT=5', 'every day, 5 times'],
    // Parts not put in words: the rule as it is.
    ['FREQ=YEARLY;BYMONTH=3', 'FREQ=YEARLY;BYMONTH=3'],
    ['FREQ=MONTHLY;BYDAY=MO', 'FREQ=MONTHLY;BYDAY=MO'],
  ];
  for (const [rule, words] of cases) assert.equal(describeRule(rule), words, rule);
  assert.match(describeRule('FREQ=DAILY;UNTIL=20300105T000000Z'), /^every day, until /);
  assert.equal(describeRule(null), '');
});

test('the repeat picker and its rules', () => {
  assert.equal(repeatChoice(null), '');
  assert.equal(repeatChoice('FREQ=DAILY'), 'daily');
  assert.equal(repeatChoice('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR'), 'weekdays');
  assert.equal(repeatChoice('FREQ=MONTHLY;BYMONTHDAY=1'), 'custom');
  assert.equal(repeatRule('monthly', ''), 'FREQ=MONTHLY');
  assert.equal(repeatRule('custom', ' RRULE:FREQ=WEEKLY;BYDAY=MO '), 'FREQ=WEEKLY;BYDAY=MO');
  assert.equal(repeatRule('custom', ''), null);
  assert.equal(repeatRule('', 'ignored'), null);
});

test('due fields: a day alone stays a date; a day and a time are a moment in the browser zone', () => {
  assert.deepEqual(dueFields('', '09:00'), {});
  assert.deepEqual(dueFields('2030-01-07', ''), { due_date: '2030-01-07' });
  const f = dueFields('2030-01-07', '09:30');
  assert.equal(f.due_at, new Date('2030-01-07T09:30').toISOString());
  assert.equal(f.tz, Intl.DateTimeFormat().resolvedOptions().timeZone);
  // A date-only task (midnight UTC, no zone) edits as its day, with no time.
  const day = { due_at: '2030-01-07T00:00:00.000000Z', due_date: '2030-01-07T00:00:00.000000Z', tz: null };
  assert.equal(dateOnly(day), true);
  assert.deepEqual(dueInputs(day), { day: '2030-01-07', clock: '' });
  assert.equal(dateOnly({ ...day, tz: 'Europe/Berlin' }), false);
});
