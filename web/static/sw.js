// The offline shell: a service worker that keeps the page, its files and the
// SDK's modules, so that a reload without network shows the board. The board
// itself comes from the SDK's IndexedDB state (the task list and the outbox
// of changes not yet sent); nothing of the API is cached here.
//
// Served at /sw.js (scope /) by web/embed.go, which writes this build's
// assets path into ASSETS: a new build is a new worker, whose activation
// drops the caches of older builds.
//
//   /assets/<version>/...  immutable: from the cache, else the network (then cached)
//   / and /sdk/...         served no-cache: the network first (then cached), the cache when it fails
//   anything else          (the API, the socket) not touched

const ASSETS = '/assets/__VERSION__/';
const CACHE = `tasksync-shell:${ASSETS}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.add('/')).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('tasksync-shell:') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// The page names what it loaded before this worker controlled it (the
// first visit): those files are cached too.
self.addEventListener('message', (event) => {
  const { type, urls } = event.data || {};
  if (type !== 'cache' || !Array.isArray(urls)) return;
  const mine = urls.filter((u) => kind(new URL(u, self.location.origin)) !== null);
  event.waitUntil(caches.open(CACHE).then(async (c) => {
    for (const u of mine) {
      if (!(await c.match(u))) await c.add(u).catch(() => {});
    }
    event.source?.postMessage({ type: 'cached', count: mine.length });
  }));
});

function kind(url) {
  if (url.origin !== self.location.origin) return null;
  if (url.pathname.startsWith(ASSETS)) return 'immutable';
  if (url.pathname === '/' || url.pathname === '/index.html' || url.pathname.startsWith('/sdk/')) return 'fresh';
  return null;
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  const k = kind(url);
  if (k === null) return;
  const key = url.pathname === '/index.html' ? '/' : url.origin + url.pathname; // no query, no fragment
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    if (k === 'immutable') {
      const hit = await cache.match(key);
      if (hit) return hit;
    }
    try {
      const res = await fetch(req);
      // Stored after the page has its answer, not before.
      if (res.ok) event.waitUntil(cache.put(key, res.clone()));
      return res;
    } catch (err) {
      const hit = await cache.match(key);
      if (hit) return hit;
      throw err;
    }
  })());
});
