package docs

import (
	"bytes"
	"encoding/json"
	"testing"

	"go.yaml.in/yaml/v4"
)

// TestOpenAPIJSON checks that the served JSON is the YAML document: the same
// value, keys in the file's order.
func TestOpenAPIJSON(t *testing.T) {
	got, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON, fromYAML any
	if err := json.Unmarshal(got, &fromJSON); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if err := yaml.Unmarshal(OpenAPIYAML, &fromYAML); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromJSON)
	b, _ := json.Marshal(fromYAML)
	if !bytes.Equal(a, b) {
		t.Error("the JSON is not the YAML document")
	}
	if !bytes.HasPrefix(got, []byte(`{"openapi":"3.1.0",`)) {
		t.Errorf("keys not in the file's order: %.40s", got)
	}
	again, _ := OpenAPIJSON()
	if &again[0] != &got[0] {
		t.Error("converted twice")
	}
}
