// Package web is the browser client of tasksync: a task board with live
// sync and the assistant's chat panel, as plain ES modules and CSS embedded
// into the server binary. There is no build step: the files under static/
// are what the browser runs.
//
// # What it owns
//
//   - [Handler]: serves the page at / and its files under
//     /assets/{version}/, with explicit content types, a strict
//     Content-Security-Policy (scripts, styles and connections to this
//     origin only: no inline script, no third party), and caching that
//     cannot mix versions: the page is revalidated on every load
//     (no-cache), the files it names carry a content hash of the whole
//     tree in their path and are immutable. A file asked for under another
//     version (a page from an older or newer instance during a rolling
//     deploy) is still served, uncached, so that a mixed fleet never
//     breaks a page.
//   - The offline shell's service worker at [ServiceWorkerPath] (/sw.js,
//     scope /, no-cache), with this build's assets path written in: it
//     keeps the page, its files and the SDK's modules, so that a reload
//     without network shows the board (the task list and the changes not
//     yet sent come from the SDK's IndexedDB state).
//   - Anything else it is asked for is a 404 in the API's JSON error shape,
//     so that mounting it broadly never turns an API typo into HTML.
//   - The limits the board checks before sending (title, description and
//     tag lengths, the number of tags, the length of a chat message) and
//     the chat page sizes it asks for: the page carries them in a JSON
//     block written into index.html from the constants of package tasks
//     and package chat, which own them (static/js/limits.js reads it). A
//     limit is stated once, in Go; no static file repeats one.
//
// The client itself (static/js) implements no protocol: it imports the
// TypeScript SDK from /sdk/tasksync-client.js (package tsclient serves
// clients/ts/dist), which speaks docs/PROTOCOL.md over one socket and keeps
// the outbox; the board reads conversation history over REST, and asks
// the server's parser (POST /api/{user_id}/parse, package tasks/quickadd)
// to read dates, repeats, priority and tags in a quick-add title: no date
// written in words is read in static/js.
// static/js/main.js describes its parts.
// web/test holds the browser tests (Node, playwright-core, Debian's
// Chromium), run by web/test/run.sh.
//
// # Concurrency
//
// Everything is computed once, when [Handler] is called; the handler only
// reads, and is safe for concurrent use.
package web
