// A plain ES-module page on @tasksync/client, signed in with Better Auth.
// No bundler, no npm: the SDK comes from the tasksync server's /sdk/. In a
// Next.js app, `npm install @tasksync/client` and import the same names from
// "@tasksync/client" and "@tasksync/client/better-auth" (see README.md).

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
const API = meta("tasksync-api").replace(/\/$/, "") || location.origin;
const AUTH = meta("better-auth").replace(/\/$/, "");

const { createClient } = await import(`${API}/sdk/tasksync-client.js`);
const { betterAuthToken } = await import(`${API}/sdk/better-auth.js`);

const $ = (id) => document.getElementById(id);
// Better Auth's JWT plugin turns the session cookie into a short-lived JWT at
// {AUTH}/api/auth/token; betterAuthToken caches it and fetches the next one
// before it expires, and the client refreshes its socket with it.
const getToken = betterAuthToken({ baseURL: AUTH });

async function authenticate(mode, email, password) {
  const res = await fetch(`${AUTH}/api/auth/${mode}/email`, {
    method: "POST",
    credentials: "include",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(mode === "sign-up" ? { email, password, name: email.split("@")[0] } : { email, password }),
  });
  if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message ?? `${mode} failed (${res.status})`);
  getToken.clear(); // a new session: forget any token of the previous one
}

let client = null;

function start() {
  client = createClient({ url: API, getToken });
  window.tasksync = client; // for the console (and the example's test)
  const tasks = client.tasks({ sort: "created", order: "asc" });
  const render = () => {
    const ul = $("tasks");
    ul.replaceChildren(...tasks.getSnapshot().map((t) => {
      const li = document.createElement("li");
      li.className = `${t.pending ? "pending" : ""} ${t.completed ? "done" : ""}`;
      li.dataset.id = t.id;
      const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: t.completed });
      box.addEventListener("change", () => tasks.complete(t.id, box.checked).catch(show));
      const del = Object.assign(document.createElement("button"), { textContent: "×", title: "Delete" });
      del.addEventListener("click", () => tasks.delete(t.id).catch(show));
      li.append(box, Object.assign(document.createElement("span"), { textContent: ` ${t.title} ` }), del);
      return li;
    }));
  };
  tasks.subscribe(render);
  render();
  const showState = () => {
    const s = client.connection.get();
    const { online } = client.presence.get();
    const pending = client.outbox.get().length;
    $("state").textContent = `${s.status}${online ? ` · ${online} device(s) online` : ""}${pending ? ` · ${pending} change(s) waiting` : ""}`;
    $("state").dataset.status = s.status;
    if (s.status === "unauthenticated") signedOut();
  };
  for (const o of [client.connection, client.presence, client.outbox]) o.subscribe(showState);
  showState();
  // Turns started on another device stream here too.
  client.chat.turns.subscribe((stream) => follow(stream));
  $("signin").hidden = true;
  $("app").hidden = false;
}

async function follow(stream) {
  const out = $("answer");
  out.textContent = `> ${stream.message}\n`;
  for await (const ev of stream) {
    if (ev.type === "delta") out.textContent += ev.text;
    if (ev.type === "tool_call") out.textContent += `[${ev.name}] `;
    if (ev.type === "error") out.textContent += `\n(${ev.message})`;
  }
}

function signedOut() {
  client?.close();
  client = null;
  $("app").hidden = true;
  $("signin").hidden = false;
}

function show(err) {
  $("auth-error").textContent = String(err?.message ?? err);
}

$("auth").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  try {
    await authenticate(e.submitter?.value ?? "sign-in", form.get("email"), form.get("password"));
    start();
  } catch (err) {
    show(err);
  }
});

$("add").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = e.target.elements.title;
  client.tasks().create({ title: input.value }).catch(show); // optimistic: shows at once, even offline
  input.value = "";
});

$("chat").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = e.target.elements.message;
  follow(client.chat.send(input.value)).catch(show);
  input.value = "";
});

// Already signed in (a session cookie)? Then go straight to the list.
if (await getToken().catch(() => null)) start();
