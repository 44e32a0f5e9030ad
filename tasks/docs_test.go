package tasks

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestProtocolDocStatesTheLimits: docs/PROTOCOL.md states the field limits
// this package enforces (the docs cannot use the constants; this keeps
// them true).
func TestProtocolDocStatesTheLimits(t *testing.T) {
	b, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("`title` (required, 1-%d characters after trimming)", MaxTitle),
		fmt.Sprintf("`description` (at most %d)", MaxDescription),
		fmt.Sprintf("`tags` (at most %d, each 1-%d characters;", MaxTags, MaxTag),
		fmt.Sprintf("`mutation_id` (1 to %d printable ASCII characters", MaxIdempotencyKey),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/PROTOCOL.md does not say %q", want)
		}
	}
}
