package contract

import (
	"os"
	"os/exec"
	"testing"
)

// clients/ts/src/protocol.gen.ts is generated from docs/schemas; this runs
// the generator's check, so that go test fails when someone changed a
// schema without regenerating the types. It needs node and the package's
// node_modules (npm ci in clients/ts); without them it skips, and the SDK's
// own test run (npm run check:gen, test/unit/schemas.test.mjs) checks it.
func TestGeneratedTypeScriptIsCurrent(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat("../../clients/ts/node_modules/json-schema-to-typescript"); err != nil {
		t.Skip("clients/ts/node_modules is not installed (npm ci in clients/ts)")
	}
	cmd := exec.Command(node, "scripts/gen-types.mjs", "--check")
	cmd.Dir = "../../clients/ts"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}
