// Registers the offline shell (sw.js), and hands it the files this page
// loaded before the worker controlled it (the first visit), so that the
// next load works without network. Failing to register changes nothing but
// that: the board works online as before.

export function registerOffline() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(async () => {
    const reg = await navigator.serviceWorker.ready;
    const urls = ['/', ...performance.getEntriesByType('resource').map((e) => e.name)
      .filter((u) => /^\/(assets|sdk)\//.test(new URL(u).pathname) && new URL(u).origin === location.origin)];
    reg.active?.postMessage({ type: 'cache', urls });
  }).catch((err) => {
    console.warn(`tasksync: the offline shell is not available: ${err.message}`);
  });
}
