// A real Better Auth server for the SDK's tests and for trying the Better
// Auth example by hand: better-auth with its jwt() plugin (EdDSA tokens,
// JWKS at /api/auth/jwks), email sign-up, on a better-sqlite3 database
// (in memory unless a file is given), served by node:http.
//
// As a module: `const ba = await startBetterAuth({ expirationTime: "10s" })`
// gives { url, jwksURL, signUp(email), token(cookie), signOut(cookie), close() }.
// As a program (for examples/plain): node better-auth-server.mjs [--port 3000]
// [--expiration 15m] [--origin http://127.0.0.1:8080]... [--static DIR] prints
// its URL; --static serves DIR's files at / beside /api/auth, as the app's
// own origin would serve its pages.
//
// The tasksync server verifies its tokens with AUTH_JWKS_URL={url}/api/auth/jwks
// and AUTH_ISSUER = AUTH_AUDIENCE = {url} (the plugin's iss and aud are the base URL).

import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { betterAuth } from 'better-auth';
import { jwt } from 'better-auth/plugins/jwt';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';

/**
 * Starts Better Auth on 127.0.0.1. Options: port (0: any free one),
 * expirationTime of the JWTs ("10s", "15m"), trustedOrigins (pages on other
 * origins that may call it with credentials), file (SQLite path; default in memory).
 */
export async function startBetterAuth({ port = 0, expirationTime = '15m', trustedOrigins = [], file = ':memory:', staticDir = '' } = {}) {
  const server = http.createServer();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${server.address().port}`;

  const db = new Database(file);
  const auth = betterAuth({
    baseURL: url,
    secret: randomBytes(32).toString('base64'),
    database: db,
    emailAndPassword: { enabled: true, autoSignIn: true },
    trustedOrigins,
    // Tests sign up many users from one address within seconds.
    rateLimit: { enabled: false },
    plugins: [jwt({ jwt: { expirationTime } })],
    logger: { level: 'error' },
  });
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();

  const handler = toNodeHandler(auth);
  server.on('request', (req, res) => {
    // CORS for pages on trusted origins (the example page is served by tasksync).
    const origin = req.headers.origin;
    if (origin && trustedOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Expose-Headers', 'set-auth-jwt');
      res.setHeader('Vary', 'Origin');
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST');
        res.setHeader('Access-Control-Allow-Headers', 'content-type');
        res.writeHead(204).end();
        return;
      }
    }
    if (staticDir && req.method === 'GET' && !req.url.startsWith('/api/auth/')) {
      serveFile(staticDir, req, res);
      return;
    }
    handler(req, res);
  });

  /** The session cookie (name=value) of a response that set one. */
  const cookieOf = (res) => {
    const all = res.headers.getSetCookie?.() ?? [];
    const c = all.find((v) => v.includes('session_token='));
    if (!c) throw new Error(`no session cookie in the answer (${res.status}): ${all.join('; ')}`);
    return c.split(';')[0];
  };

  const post = (path, body, cookie) => fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: url, ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });

  return {
    url,
    jwksURL: `${url}/api/auth/jwks`,
    auth,
    /** Signs up a new user; resolves to { cookie, userId }. */
    async signUp(email, password = 'correct horse battery staple', name = email.split('@')[0]) {
      const res = await post('/api/auth/sign-up/email', { email, password, name });
      if (!res.ok) throw new Error(`sign-up ${email}: ${res.status} ${await res.text()}`);
      const body = await res.json();
      return { cookie: cookieOf(res), userId: body.user.id };
    },
    /** Signs in; resolves to the session cookie. */
    async signIn(email, password = 'correct horse battery staple') {
      const res = await post('/api/auth/sign-in/email', { email, password });
      if (!res.ok) throw new Error(`sign-in ${email}: ${res.status} ${await res.text()}`);
      return cookieOf(res);
    },
    /** A JWT for the session cookie, as GET /api/auth/token returns it. */
    async token(cookie) {
      const res = await fetch(`${url}/api/auth/token`, { headers: { cookie } });
      if (!res.ok) throw new Error(`token: ${res.status} ${await res.text()}`);
      return (await res.json()).token;
    },
    /** Ends the session: /api/auth/token answers 401 for its cookie from now on. */
    async signOut(cookie) {
      const res = await post('/api/auth/sign-out', {}, cookie);
      if (!res.ok) throw new Error(`sign-out: ${res.status} ${await res.text()}`);
    },
    async close() {
      server.closeAllConnections?.();
      server.close();
      await once(server, 'close');
      db.close();
    },
  };
}

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

async function serveFile(dir, req, res) {
  const name = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/\/$/, '/index.html');
  const full = path.join(dir, path.normalize(name));
  if (!full.startsWith(path.resolve(dir) + path.sep)) {
    res.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(full);
    res.writeHead(200, { 'content-type': types[path.extname(full)] ?? 'application/octet-stream', 'cache-control': 'no-cache' }).end(body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, def) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : def;
  };
  const origins = args.flatMap((a, i) => (a === '--origin' ? [args[i + 1]] : []));
  const ba = await startBetterAuth({
    port: Number(opt('--port', '3000')),
    expirationTime: opt('--expiration', '15m'),
    trustedOrigins: origins,
    file: opt('--db', ':memory:'),
    staticDir: opt('--static', '') && path.resolve(opt('--static', '')),
  });
  console.log(`Better Auth at ${ba.url} (JWKS ${ba.jwksURL}); trusted origins: ${origins.join(', ') || 'none'}`);
  if (opt('--static', '')) console.log(`serving ${opt('--static', '')} at ${ba.url}/`);
  console.log(`tasksync: AUTH_JWKS_URL=${ba.jwksURL} AUTH_ISSUER=${ba.url} AUTH_AUDIENCE=${ba.url}`);
  const stop = async () => { await ba.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
