package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"tasksync/docs"
)

// Direction says who sends a frame: the server or a client. It is also the
// folder of the frame schemas in docs/schemas.
type Direction string

// The two directions of /ws.
const (
	Server Direction = "server"
	Client Direction = "client"
)

// schemaBase is the URL the embedded docs/schemas files are known by while
// compiling; $refs between them are relative paths.
const schemaBase = "file:///tasksync/docs/schemas/"

// frameSchemas is every frame schema by direction and frame type, compiled
// once.
type frameSchemas map[Direction]map[string]*jsonschema.Schema

var loadFrameSchemas = sync.OnceValues(func() (frameSchemas, error) {
	return compileFrameSchemas(docs.Schemas())
})

// compileFrameSchemas compiles server/<type>.json and client/<type>.json of
// fsys, with every other file of it available to their $refs.
func compileFrameSchemas(fsys fs.FS) (frameSchemas, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("docs/schemas/%s: %w", p, err)
		}
		return c.AddResource(schemaBase+p, doc)
	})
	if err != nil {
		return nil, err
	}
	out := frameSchemas{}
	for _, dir := range []Direction{Server, Client} {
		out[dir] = map[string]*jsonschema.Schema{}
		files, err := fs.Glob(fsys, string(dir)+"/*.json")
		if err != nil {
			return nil, err
		}
		for _, p := range files {
			sch, err := c.Compile(schemaBase + p)
			if err != nil {
				return nil, fmt.Errorf("docs/schemas/%s: %w", p, err)
			}
			out[dir][strings.TrimSuffix(path.Base(p), ".json")] = sch
		}
	}
	return out, nil
}

// FrameError is a frame that does not match its schema.
type FrameError struct {
	Direction Direction
	Type      string // the frame's "type", "" if it has none
	Schema    string // docs/schemas/<direction>/<type>.json, "" if no schema has that type
	Frame     []byte
	Err       error // the schema's verdict
}

func (e *FrameError) Error() string {
	frame := e.Frame
	if len(frame) > 2000 {
		frame = append(frame[:2000:2000], "..."...)
	}
	where := e.Schema
	if where == "" {
		where = "docs/schemas/" + string(e.Direction)
	}
	return fmt.Sprintf("%s frame %q does not match %s: %v\nframe: %s", e.Direction, e.Type, where, e.Err, frame)
}

func (e *FrameError) Unwrap() error { return e.Err }

// ValidateServerFrame checks a frame the server sent against
// docs/schemas/server/<type>.json. The error is a *FrameError naming the
// frame, the schema and what does not match.
func ValidateServerFrame(frame []byte) error { return ValidateFrame(Server, frame) }

// ValidateClientFrame checks a frame a client sends against
// docs/schemas/client/<type>.json.
func ValidateClientFrame(frame []byte) error { return ValidateFrame(Client, frame) }

// ValidateFrame checks one socket frame sent in direction dir against the
// schema of its type.
func ValidateFrame(dir Direction, frame []byte) error {
	schemas, err := loadFrameSchemas()
	if err != nil {
		return fmt.Errorf("contract: the frame schemas do not compile: %w", err)
	}
	return validateFrame(schemas, dir, frame)
}

func validateFrame(schemas frameSchemas, dir Direction, frame []byte) error {
	fail := func(typ, schema string, err error) error {
		return &FrameError{Direction: dir, Type: typ, Schema: schema, Frame: bytes.Clone(frame), Err: err}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(frame))
	if err != nil {
		return fail("", "", fmt.Errorf("not one JSON value: %w", err))
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fail("", "", errors.New("not a JSON object"))
	}
	typ, _ := obj["type"].(string)
	sch := schemas[dir][typ]
	if sch == nil {
		return fail(typ, "", fmt.Errorf("no %s frame has type %q (docs/schemas/%s/<type>.json)", dir, typ, dir))
	}
	count(dir, typ)
	name := "docs/schemas/" + string(dir) + "/" + typ + ".json"
	if err := sch.Validate(v); err != nil {
		return fail(typ, name, err)
	}
	return nil
}

// Counted frames, for [Validated] and TASKSYNC_FRAME_LOG.
var (
	validatedServer, validatedClient atomic.Int64
	logMu                            sync.Mutex
	logFile                          *os.File
	logOpened                        bool
)

// Validated returns how many frames of each direction were checked so far
// by this process (valid or not).
func Validated() (server, client int64) {
	return validatedServer.Load(), validatedClient.Load()
}

// count records a checked frame; with TASKSYNC_FRAME_LOG set to a file
// name, it also appends "<direction> <type>" to that file, so that the
// frames a whole test run checked can be counted by type.
func count(dir Direction, typ string) {
	if dir == Server {
		validatedServer.Add(1)
	} else {
		validatedClient.Add(1)
	}
	name := os.Getenv("TASKSYNC_FRAME_LOG")
	if name == "" {
		return
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !logOpened {
		logOpened = true
		logFile, _ = os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	if logFile != nil {
		fmt.Fprintf(logFile, "%s %s\n", dir, typ)
	}
}

// MarshalClientFrame encodes v as JSON and checks it as a client frame: a
// test's way of sending only frames that a conforming client may send.
func MarshalClientFrame(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return b, ValidateClientFrame(b)
}
