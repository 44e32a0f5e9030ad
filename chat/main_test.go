package chat_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tasksync/chat"
	"tasksync/internal/contract"
	"tasksync/internal/openaitest"
	"tasksync/internal/testdb"
	"tasksync/tasks"
)

func TestMain(m *testing.M) {
	// Every HTTP answer the tests get must match docs/openapi.yaml.
	api := contract.ValidateHTTP()
	api.PartialServer = true // the test servers mount this package's routes only
	os.Exit(api.Report(testdb.Run(m)))
}

// quietLogger drops logs; tests look at frames and rows.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testEnv is one test's database and chat service.
type testEnv struct {
	t     *testing.T
	db    *testdb.DB
	tasks *tasks.Service
	store *chat.Store
	tools *chat.Tools
	pub   *recorder
	svc   *chat.Service
}

func newEnv(t *testing.T, model chat.Model, cfg chat.Config) *testEnv {
	t.Helper()
	db := testdb.New(t)
	e := &testEnv{t: t, db: db, tasks: tasks.NewService(db.Pool), store: chat.NewStore(db.Pool), pub: newRecorder()}
	e.tools = chat.NewTools(e.tasks, quietLogger)
	e.svc = chat.NewService(cfg, chat.ServiceDeps{Store: e.store, Tools: e.tools, Model: model, Publisher: e.pub, Logger: quietLogger})
	t.Cleanup(e.svc.Stop) // before the database is dropped
	return e
}

// openAI is the real openai-go model against a fake endpoint.
func openAI(fake *openaitest.Server) chat.Model {
	return chat.NewOpenAI(chat.OpenAIConfig{BaseURL: fake.URL, APIKey: "test-key", Model: "gpt-test"})
}

func (e *testEnv) start(user string, conv int64, msg string) *chat.Turn {
	e.t.Helper()
	turn, err := e.svc.Start(context.Background(), chat.StartRequest{UserID: user, ConversationID: conv, Message: msg})
	if err != nil {
		e.t.Fatalf("start %q: %v", msg, err)
	}
	return turn
}

func (e *testEnv) addTask(user, title string) int64 {
	e.t.Helper()
	res, err := e.tasks.Create(context.Background(), user, tasks.Fields{Title: &title}, tasks.MutationOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.TaskID
}

func (e *testEnv) taskList(user string) []tasks.Task {
	e.t.Helper()
	page, err := e.tasks.List(context.Background(), user, tasks.ListQuery{Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	return page.Tasks
}

func (e *testEnv) messages(user string, conv int64) []chat.Message {
	e.t.Helper()
	list, err := e.store.Messages(context.Background(), user, conv, 0, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// frame is a decoded published frame.
type frame map[string]any

func (f frame) typ() string { s, _ := f["type"].(string); return s }
func (f frame) str(k string) string {
	s, _ := f[k].(string)
	return s
}

// recorder is a Publisher that keeps every frame by user.
type recorder struct {
	mu      sync.Mutex
	frames  map[string][]frame
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{frames: map[string][]frame{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) PublishUser(_ context.Context, user string, b []byte) error {
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		panic("published frame is not JSON: " + string(b))
	}
	r.mu.Lock()
	r.frames[user] = append(r.frames[user], f)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return nil
}

// turnFrames returns the frames of turnID published so far.
func (r *recorder) turnFrames(user, turnID string) []frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []frame
	for _, f := range r.frames[user] {
		if f.str("turn_id") == turnID {
			out = append(out, f)
		}
	}
	return out
}

// waitFor waits until cond holds for the frames of turnID, re-checking
// whenever a frame is published; it fails after 20s.
func (r *recorder) waitFor(t *testing.T, user, turnID, what string, cond func([]frame) bool) []frame {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if fs := r.turnFrames(user, turnID); cond(fs) {
			return fs
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("%s: not within 20s; frames: %v", what, r.turnFrames(user, turnID))
		}
	}
}

// waitEnd waits for the turn's chat.done or chat.error and returns all its
// frames.
func (r *recorder) waitEnd(t *testing.T, user, turnID string) []frame {
	t.Helper()
	return r.waitFor(t, user, turnID, "end of turn "+turnID, func(fs []frame) bool {
		return len(fs) > 0 && (fs[len(fs)-1].typ() == chat.TypeDone || fs[len(fs)-1].typ() == chat.TypeError)
	})
}

// text concatenates the chat.delta frames.
func text(fs []frame) string {
	var b strings.Builder
	for _, f := range fs {
		if f.typ() == chat.TypeDelta {
			b.WriteString(f.str("text"))
		}
	}
	return b.String()
}

// shape is the sequence of frame types with runs of deltas collapsed into
// one (a lagging consumer gets merged deltas, so their number varies).
func shape(fs []frame) []string {
	var out []string
	for _, f := range fs {
		if f.typ() == chat.TypeDelta && len(out) > 0 && out[len(out)-1] == chat.TypeDelta {
			continue
		}
		out = append(out, f.typ())
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
