package docs

import (
	"embed"
	"io/fs"
)

//go:embed schemas asyncapi.yaml
var socketContract embed.FS

// Schemas returns the JSON Schemas (2020-12) of every socket frame:
// common.json (shared types), server/<type>.json and client/<type>.json (one
// per frame type), server-frame.json and client-frame.json (the unions).
// Paths are relative to docs/schemas; $refs between the files are relative
// paths too.
func Schemas() fs.FS {
	sub, err := fs.Sub(socketContract, "schemas")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// AsyncAPI returns docs/asyncapi.yaml, the AsyncAPI 3.0 document of /ws,
// whose messages refer to the files of [Schemas] as ./schemas/<path>.
func AsyncAPI() []byte {
	b, err := socketContract.ReadFile("asyncapi.yaml")
	if err != nil {
		panic(err)
	}
	return b
}
