package docs

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"go.yaml.in/yaml/v4"
)

// OpenAPIYAML is docs/openapi.yaml: the OpenAPI 3.1 document of every REST
// endpoint.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// OpenAPIJSON returns [OpenAPIYAML] as JSON, with the keys in the order of
// the YAML file. It is converted once; later calls return the same bytes,
// which callers must not change.
func OpenAPIJSON() ([]byte, error) { return openAPIJSON() }

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	return yamlToJSON(OpenAPIYAML)
})

// yamlToJSON converts one YAML document to JSON, keeping the order of
// mapping keys (a map[string]any would sort them).
func yamlToJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("openapi.yaml: not one YAML document")
	}
	var out []byte
	out, err := appendNode(out, doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return out, nil
}

func appendNode(out []byte, n *yaml.Node) ([]byte, error) {
	switch n.Kind {
	case yaml.MappingNode:
		out = append(out, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a mapping key that is not a scalar", k.Line)
			}
			if i > 0 {
				out = append(out, ',')
			}
			key, _ := json.Marshal(k.Value)
			out = append(append(out, key...), ':')
			var err error
			if out, err = appendNode(out, v); err != nil {
				return nil, err
			}
		}
		return append(out, '}'), nil
	case yaml.SequenceNode:
		out = append(out, '[')
		for i, v := range n.Content {
			if i > 0 {
				out = append(out, ',')
			}
			var err error
			if out, err = appendNode(out, v); err != nil {
				return nil, err
			}
		}
		return append(out, ']'), nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return append(out, b...), nil
	case yaml.AliasNode:
		return appendNode(out, n.Alias)
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
}
