// examples/plain as a Next.js + Better Auth team would deploy it: the page
// on the app's origin (where Better Auth and its session cookie live), the
// tasksync API on another origin trusting Better Auth's JWKS and allowing
// the app's origin, the SDK imported from the API's /sdk/. Signs up through
// the page's form, adds a task, asks the assistant, and finds the task on
// the server.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Instance, serverTasks } from '../support/harness.mjs';
import { launchBrowser, newPage } from '../support/browser.mjs';
import { startBetterAuth } from '../support/better-auth-server.mjs';

const example = new URL('../../../../examples/plain/', import.meta.url);
let ba;
let inst;
let browser;

before(async () => {
  ba = await startBetterAuth({ expirationTime: '10s' });
  inst = new Instance('example', {
    AUTH_JWT_SECRET: null, AUTH_JWKS_URL: ba.jwksURL, AUTH_ISSUER: ba.url, AUTH_AUDIENCE: ba.url,
    CORS_ALLOWED_ORIGINS: ba.url,
  });
  await inst.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await inst?.stop();
  await ba?.close();
});

test('examples/plain: sign up with Better Auth, add a task, ask the assistant, from a page on the app origin', async () => {
  const html = readFileSync(new URL('index.html', example), 'utf8').replace('content="http://127.0.0.1:8080"', `content="${inst.url}"`);
  assert.ok(html.includes(inst.url), 'the page names the API in its meta tag');
  const { context, page } = await newPage(browser);
  // The app's origin serves the page (Next.js would); /api/auth/* reaches Better Auth.
  await page.route(`${ba.url}/`, (r) => r.fulfill({ contentType: 'text/html; charset=utf-8', body: html }));
  await page.route(`${ba.url}/app.js`, (r) => r.fulfill({ contentType: 'text/javascript; charset=utf-8', body: readFileSync(new URL('app.js', example)) }));
  const refused = [];
  page.on('response', (r) => { if (r.status() === 401) refused.push(new URL(r.url()).pathname); });
  await page.goto(`${ba.url}/`);

  const email = `example-${Date.now()}@example.com`;
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', 'correct horse battery staple');
  await page.click('button[value=sign-up]');
  await page.locator('#state[data-status=live]').waitFor({ timeout: 15000 });

  await page.fill('input[name=title]', 'from the example page');
  await page.press('input[name=title]', 'Enter');
  await page.locator('#tasks li:not(.pending)', { hasText: 'from the example page' }).waitFor();

  await page.fill('input[name=message]', "what's pending?");
  await page.press('input[name=message]', 'Enter');
  await page.locator('#answer', { hasText: 'from the example page' }).waitFor();

  const cookie = await ba.signIn(email);
  const tok = await ba.token(cookie);
  const user = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString()).sub;
  assert.deepEqual((await serverTasks(inst, tok, user)).map((t) => t.title), ['from the example page']);
  // The one expected refusal: the page asks for a token before anyone signed in.
  assert.deepEqual(refused, ['/api/auth/token']);
  assert.deepEqual(page.errors.filter((e) => !/status of 401/.test(e)), []);
  assert.ok(page.frames.sent > 0 && page.frames.received > 0, `frames checked: ${JSON.stringify(page.frames)}`);
  await context.close();
});
