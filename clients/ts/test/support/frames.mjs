// Validators of socket frames against docs/schemas (JSON Schema 2020-12),
// the same schemas the Go tests check every server frame against. The SDK
// tests check what the SDK sends (validateClientFrame) and what their fake
// servers send (validateServerFrame).
//
//   import { validateClientFrame, validateServerFrame } from "../support/frames.mjs";
//   validateClientFrame({ type: "ping", id: 1 });   // throws an Error naming the frame type and the errors
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const here = dirname(fileURLToPath(import.meta.url));
/** The folder of the schemas: docs/schemas of the repository. */
export const schemasDir = join(here, "..", "..", "..", "..", "docs", "schemas");

function schemaFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? schemaFiles(join(dir, e.name)) : e.name.endsWith(".json") ? [join(dir, e.name)] : [],
  );
}

// strictRequired is off: if/then branches require properties declared beside them.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
addFormats(ajv);
// Each file is known by its file URL, so that the relative $refs between
// them resolve as they do on disk.
for (const file of schemaFiles(schemasDir)) {
  ajv.addSchema({ ...JSON.parse(readFileSync(file, "utf8")), $id: pathToFileURL(file).href });
}

const validators = { server: new Map(), client: new Map() };
for (const dir of ["server", "client"]) {
  for (const name of readdirSync(join(schemasDir, dir))) {
    if (!name.endsWith(".json")) continue;
    const type = name.slice(0, -".json".length);
    validators[dir].set(type, ajv.getSchema(pathToFileURL(join(schemasDir, dir, name)).href));
  }
}

/** The frame types that have a schema, by direction. */
export const frameTypes = { server: [...validators.server.keys()], client: [...validators.client.keys()] };

function validate(dir, frame) {
  const obj = typeof frame === "string" ? JSON.parse(frame) : frame;
  const text = JSON.stringify(obj);
  const shown = text.length > 2000 ? text.slice(0, 2000) + "..." : text;
  const type = obj !== null && typeof obj === "object" && !Array.isArray(obj) ? obj.type : undefined;
  const check = validators[dir].get(type);
  if (!check) {
    throw new Error(`${dir} frame has no schema for type ${JSON.stringify(type)} (docs/schemas/${dir}/<type>.json)\nframe: ${shown}`);
  }
  if (!check(obj)) {
    const file = relative(join(schemasDir, "..", ".."), join(schemasDir, dir, `${type}.json`));
    const errors = check.errors.map((e) => `${e.instancePath || "/"} ${e.message}${e.params ? " " + JSON.stringify(e.params) : ""}`);
    const err = new Error(`${dir} frame "${type}" does not match ${file}:\n  ${errors.join("\n  ")}\nframe: ${shown}`);
    err.frameType = type;
    err.errors = check.errors;
    throw err;
  }
  return obj;
}

/** Checks a frame a client sends (an object or its JSON text); throws an Error naming the frame type and the schema errors. */
export function validateClientFrame(obj) {
  return validate("client", obj);
}

/** Checks a frame the server sends (an object or its JSON text); throws an Error naming the frame type and the schema errors. */
export function validateServerFrame(obj) {
  return validate("server", obj);
}
