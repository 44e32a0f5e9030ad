// Fails when dist/ (committed: the Go server embeds and serves it at /sdk/)
// is not what `tsc -p tsconfig.json` makes from src/ now.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = mkdtempSync(join(tmpdir(), "tasksync-dist-"));
try {
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.json"), "--outDir", out], {
    stdio: "inherit",
  });
  const files = (dir) =>
    readdirSync(dir).flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? files(p) : [p];
    });
  const dist = join(root, "dist");
  const want = new Set(files(out).map((p) => relative(out, p)));
  const have = new Set(files(dist).map((p) => relative(dist, p)));
  const problems = [];
  for (const f of want) {
    if (!have.has(f)) problems.push(`missing: dist/${f}`);
    else if (!readFileSync(join(out, f)).equals(readFileSync(join(dist, f)))) problems.push(`stale: dist/${f}`);
  }
  for (const f of have) if (!want.has(f)) problems.push(`extra: dist/${f}`);
  if (problems.length > 0) {
    console.error(`dist/ is not the build of src/ (run npm run build in clients/ts and commit dist/):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`dist/ is current (${want.size} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
