// The SDK as a Node program uses it: dist/tasksync-client.js (what the
// package ships and the server serves at /sdk/), `ws` as the WebSocket,
// memory storage unless told otherwise, and a frame recorder.

import { createClient, memoryStorage } from '../../dist/tasksync-client.js';
import { recordingWebSocket } from './harness.mjs';

export { createClient, memoryStorage };

/** An online source the test switches: set(false) is the network going away. */
export function switchableOnline(initial = true) {
  let on = initial;
  const subs = new Set();
  return {
    isOnline: () => on,
    subscribe(cb) {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    set(v) {
      on = v;
      for (const cb of [...subs]) cb(v);
    },
  };
}

const open = new Set();
const recorders = [];

/**
 * createClient with test defaults (fast backoff, memory storage, a
 * switchable online source); resolves to { client, rec, online }. Every
 * client is closed, and its frames checked, by closeAll().
 */
export function testClient({ urls, token, getToken, storage, online, ...rest }) {
  const { WebSocket, rec } = recordingWebSocket();
  const net = online ?? switchableOnline();
  const client = createClient({
    url: urls.map((i) => (typeof i === 'string' ? i : i.url)),
    getToken: getToken ?? (() => token),
    WebSocket,
    storage: storage ?? memoryStorage(),
    online: net,
    backoff: { minMs: 50, maxMs: 400 },
    ...rest,
  });
  open.add(client);
  recorders.push(rec);
  const close = client.close.bind(client);
  client.close = async () => {
    open.delete(client);
    await close();
  };
  return { client, rec, online: net };
}

/**
 * Closes every client testClient made, and resolves to what their sockets
 * sent or received that does not validate against docs/schemas since the
 * last call (assert it is empty).
 */
export async function closeAll() {
  await Promise.all([...open].map((c) => c.close().catch(() => {})));
  return recorders.splice(0).flatMap((rec) => rec.invalid);
}

/** The instance the client's socket is on (from hello), as its INSTANCE_ID prefix. */
export function onInstance(client, inst) {
  const s = client.connection.get();
  return s.status === 'live' && typeof s.instance === 'string' && s.instance.startsWith(`${inst.name}-`);
}
