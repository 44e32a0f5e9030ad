// The frame schemas (docs/schemas) against docs/PROTOCOL.md: every JSON
// example of a frame there validates, broken frames do not, every frame type
// has an example, and src/protocol.gen.ts is current with the schemas.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { frameTypes, schemasDir, validateClientFrame, validateServerFrame } from "../support/frames.mjs";
import { generate } from "../../scripts/gen-types.mjs";

const protocol = readFileSync(join(schemasDir, "..", "PROTOCOL.md"), "utf8");

// PROTOCOL.md abbreviates tasks as {"id":7,"...":"..."} and some strings as "...".
const sampleTask = {
  id: 7, user_id: "alice", title: "Buy milk", description: "", completed: false, priority: "medium", tags: ["home"],
  due_date: null, due_at: null, remind_at: null, recurrence: null, tz: null, series_id: null,
  created_at: "2026-11-25T19:25:40.577141Z", updated_at: "2026-11-25T19:25:40.577141Z", version: 1,
};
const samples = { session_id: "Q2GQ5ZT4MDX3S6KA", connected_at: "2026-11-25T19:25:21.949Z" };

function expand(v) {
  if (Array.isArray(v)) return v.map(expand);
  if (v === null || typeof v !== "object") return v;
  const out = "..." in v ? { ...sampleTask } : {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "...") continue;
    out[k] = x === "..." ? samples[k] : expand(x);
  }
  return out;
}

// Every JSON value of the ```json blocks (one per line, or spread over
// several lines) that is an object with a frame type.
function examples() {
  const out = [];
  for (const [, block] of protocol.matchAll(/```json\n([\s\S]*?)```/g)) {
    let pending = "";
    for (const line of block.split("\n")) {
      pending += line + "\n";
      let value;
      try {
        value = JSON.parse(pending);
      } catch {
        continue;
      }
      pending = "";
      if (value === null || typeof value !== "object" || Array.isArray(value)) continue;
      for (const dir of ["server", "client"]) {
        if (frameTypes[dir].includes(value.type)) out.push({ dir, frame: expand(value) });
      }
    }
    assert.equal(pending.trim(), "", `a json block of docs/PROTOCOL.md does not parse:\n${block}`);
  }
  return out;
}

const validate = { server: validateServerFrame, client: validateClientFrame };

test("every frame example of docs/PROTOCOL.md matches its schema, and every frame type has one", () => {
  const all = examples();
  assert.ok(all.length >= 40, `only ${all.length} examples found`);
  const seen = { server: new Set(), client: new Set() };
  for (const { dir, frame } of all) {
    validate[dir](frame);
    seen[dir].add(frame.type);
  }
  for (const dir of ["server", "client"]) {
    assert.deepEqual([...seen[dir]].sort(), [...frameTypes[dir]].sort(), `${dir} frame types without an example`);
  }
});

const task = sampleTask;
const broken = [
  ["server", { type: "task.created", seq: 1, task: { id: 7, title: "Buy milk" } }, /must have required property/],
  ["server", { type: "task.created", seq: 1, task, extra: 1 }, /must NOT have additional properties/],
  ["server", { type: "task.updated", seq: 2, task: { ...task, priority: "urgent" } }, /\/task\/priority/],
  ["server", { type: "task.updated", seq: 2, task: { ...task, created_at: "2026-11-25T19:25:40Z" } }, /\/task\/created_at/],
  ["server", { type: "pong", server_time: "yesterday" }, /\/server_time must match format "date-time"/],
  ["server", { type: "error", code: "oops", message: "m" }, /\/code must be equal to one of the allowed values/],
  ["server", { type: "error", code: "version_mismatch", message: "stale" }, /task/],
  ["server", { type: "snapshot", seq: 1, page: 0, tasks: [], more: false }, /reason/],
  ["server", { type: "presence", event: "sync", online: 0, sessions: null }, /\/sessions must be array/],
  ["server", { type: "reply", id: 1, re: "chat.cancel", conversation_id: 1, status: "stopped" }, /oneOf/],
  ["server", { type: "chat.done", conversation_id: 1, turn_id: "t_aaaaaaaaaaaaaaaa", message_id: 2, status: "error", text: "", tool_calls: [] }, /\/status/],
  ["server", { type: "task.create", task: { title: "x" } }, /no schema for type "task.create"/],
  ["client", { type: "task.create", task: { description: "no title" } }, /must have required property 'title'/],
  ["client", { type: "task.create", task: { title: "   " } }, /\/task\/title must match pattern/],
  ["client", { type: "task.create", task: { title: "x", colour: "red" } }, /must NOT have additional properties/],
  ["client", { type: "task.create", mutation_id: "has space", task: { title: "x" } }, /\/mutation_id/],
  ["client", { type: "task.create", id: "x".repeat(65), task: { title: "x" } }, /\/id/],
  ["client", { type: "task.update", task_id: 7, task: { due_date: "tomorrow" } }, /\/task\/due_date/],
  ["client", { type: "task.complete", task_id: "7" }, /\/task_id must be integer/],
  ["client", { type: "task.list", filter: { status: "done" } }, /\/filter/],
  ["client", { type: "sync" }, /must have required property 'since'/],
  ["client", { type: "chat.send", message: "m".repeat(4001) }, /\/message/],
  ["client", { type: "chat.cancel" }, /must have required property 'conversation_id'/],
  ["client", { type: "hello" }, /no schema for type "hello"/],
];

test("broken frames fail, with an error naming the frame type and what is wrong", () => {
  for (const [dir, frame, want] of broken) {
    assert.throws(() => validate[dir](frame), (err) => {
      assert.match(err.message, want, `${dir} ${JSON.stringify(frame)}`);
      assert.match(err.message, new RegExp(`${dir} frame`));
      if (frame.type !== "task.create" || dir === "client") {
        assert.ok(err.message.includes(JSON.stringify(frame.type)), err.message);
      }
      return true;
    });
  }
});

test("frames given as JSON text are checked too", () => {
  validateServerFrame('{"type":"pong","id":"p1","server_time":"2026-11-25T19:25:22.995Z"}');
  assert.throws(() => validateServerFrame('{"type":"pong","id":"p1"}'), /server_time/);
});

test("src/protocol.gen.ts is current with docs/schemas", async () => {
  const want = await generate();
  const have = readFileSync(new URL("../../src/protocol.gen.ts", import.meta.url), "utf8");
  assert.ok(have === want, "src/protocol.gen.ts is not current: run `node scripts/gen-types.mjs` in clients/ts and commit it");
});
