package tasks

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync/internal/testdb"
)

// TestHTTPTimeFields: due_at, remind_at, recurrence and tz round-trip over
// REST, are normalised, cleared by null, reset by PUT; due_date and due_at
// always carry the same value.
func TestHTTPTimeFields(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")

	res := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"standup","due_at":"2026-11-30T09:00:00+01:00",
		"remind_at":"2026-11-30T08:50:00+01:00","recurrence":" RRULE:freq=weekly;byday=MO,WE ","tz":"Europe/Berlin"}`)
	res.wantStatus(t, http.StatusCreated)
	raw := res.jsonObject(t)
	want := map[string]any{"due_date": "2026-11-30T08:00:00.000000Z", "due_at": "2026-11-30T08:00:00.000000Z",
		"remind_at": "2026-11-30T07:50:00.000000Z", "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE", "tz": "Europe/Berlin",
		"series_id": raw["id"]} // a task created with a rule starts its series
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("created %s = %v, want %v", k, raw[k], v)
		}
	}
	task := res.task(t)
	one := alice.tasksPath(idPath(task.ID))
	if got := alice.do(t, http.MethodGet, one, "").jsonObject(t); !reflect.DeepEqual(got, raw) {
		t.Errorf("GET %v\nwant %v", got, raw)
	}

	// due_date alone sets due_at too; both equal is fine.
	got := alice.do(t, http.MethodPatch, one, `{"due_date":"2026-12-07","due_at":"2026-12-07T00:00:00Z"}`).jsonObject(t)
	if got["due_at"] != "2026-12-07T00:00:00.000000Z" || got["due_date"] != got["due_at"] || got["version"] != 2.0 {
		t.Errorf("PATCH due: %v", got)
	}
	// Sending back what the task holds is a no-op.
	got = alice.do(t, http.MethodPatch, one, `{"remind_at":"2026-11-30T07:50:00Z","recurrence":"FREQ=WEEKLY;BYDAY=MO,WE","tz":"Europe/Berlin"}`).jsonObject(t)
	if got["version"] != 2.0 {
		t.Errorf("no-op PATCH moved the version: %v", got["version"])
	}
	// Clearing: the rule first (it needs due_at), then the rest; "" clears too.
	got = alice.do(t, http.MethodPatch, one, `{"recurrence":null,"due_at":null,"remind_at":null,"tz":""}`).jsonObject(t)
	for _, k := range []string{"due_at", "due_date", "remind_at", "recurrence", "tz"} {
		if got[k] != nil {
			t.Errorf("after clearing, %s = %v", k, got[k])
		}
	}
	// PUT resets what it is not sent.
	alice.do(t, http.MethodPatch, one, `{"due_at":"2026-12-01T10:00:00Z","recurrence":"FREQ=DAILY","tz":"Asia/Tokyo","remind_at":"2026-12-01T09:00:00Z"}`).wantStatus(t, http.StatusOK)
	got = alice.do(t, http.MethodPut, one, `{"title":"replaced"}`).jsonObject(t)
	for _, k := range []string{"due_at", "remind_at", "recurrence", "tz"} {
		if got[k] != nil {
			t.Errorf("after PUT, %s = %v", k, got[k])
		}
	}
}

func TestHTTPTimeFieldsInvalid(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	const due = `"due_at":"2026-12-01T09:00:00Z"`
	for _, c := range []struct {
		name, body string
		field      string
	}{
		{"due_at and due_date differ", `{"title":"t","due_at":"2026-12-01T09:00:00Z","due_date":"2026-12-01"}`, "due_at"},
		{"due_at null, due_date set", `{"title":"t","due_at":null,"due_date":"2026-12-01"}`, "due_at"},
		{"bad due_at", `{"title":"t","due_at":"tomorrow"}`, "due_at"},
		{"bad remind_at", `{"title":"t","remind_at":"soon"}`, "remind_at"},
		{"remind_at number", `{"title":"t","remind_at":5}`, "remind_at"},
		{"rule without due", `{"title":"t","recurrence":"FREQ=DAILY"}`, "recurrence"},
		{"hourly", `{"title":"t",` + due + `,"recurrence":"FREQ=HOURLY"}`, "recurrence"},
		{"minutely", `{"title":"t",` + due + `,"recurrence":"FREQ=MINUTELY;INTERVAL=5"}`, "recurrence"},
		{"no FREQ", `{"title":"t",` + due + `,"recurrence":"BYDAY=MO"}`, "recurrence"},
		{"garbage", `{"title":"t",` + due + `,"recurrence":"every day"}`, "recurrence"},
		{"unknown property", `{"title":"t",` + due + `,"recurrence":"FREQ=DAILY;FOO=1"}`, "recurrence"},
		{"count and until", `{"title":"t",` + due + `,"recurrence":"FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"}`, "recurrence"},
		{"count 0", `{"title":"t",` + due + `,"recurrence":"FREQ=DAILY;COUNT=0"}`, "recurrence"},
		{"interval -1", `{"title":"t",` + due + `,"recurrence":"FREQ=DAILY;INTERVAL=-1"}`, "recurrence"},
		{"dtstart", `{"title":"t",` + due + `,"recurrence":"DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY"}`, "recurrence"},
		{"bymonthday 32", `{"title":"t",` + due + `,"recurrence":"FREQ=MONTHLY;BYMONTHDAY=32"}`, "recurrence"},
		{"never happens", `{"title":"t",` + due + `,"recurrence":"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}`, "recurrence"},
		{"until before due", `{"title":"t",` + due + `,"recurrence":"FREQ=DAILY;UNTIL=20250101T000000Z"}`, "recurrence"},
		{"too long", `{"title":"t",` + due + `,"recurrence":"FREQ=DAILY;BYMONTHDAY=1` + repeatString(",1", 260) + `"}`, "recurrence"},
		{"recurrence number", `{"title":"t","recurrence":1}`, "recurrence"},
		{"unknown zone", `{"title":"t","tz":"Mars/Olympus"}`, "tz"},
		{"Local", `{"title":"t","tz":"Local"}`, "tz"},
		{"path", `{"title":"t","tz":"../../etc/passwd"}`, "tz"},
		{"tz NUL", `{"title":"t","tz":"Europe/Berlin\u0000"}`, "tz"},
	} {
		got := alice.do(t, http.MethodPost, alice.tasksPath(""), c.body).wantError(t, http.StatusUnprocessableEntity, "invalid")
		if _, ok := got.Fields[c.field]; !ok || len(got.Fields) != 1 {
			t.Errorf("%s: fields %v, want one message for %s", c.name, got.Fields, c.field)
		}
	}
	// Removing due_at under a rule is refused, and changes nothing.
	task := alice.create(t, `{"title":"weekly",`+due+`,"recurrence":"FREQ=WEEKLY"}`)
	got := alice.do(t, http.MethodPatch, alice.tasksPath(idPath(task.ID)), `{"due_at":null}`).wantError(t, http.StatusUnprocessableEntity, "invalid")
	if _, ok := got.Fields["recurrence"]; !ok {
		t.Errorf("clearing due_at under a rule: fields %v", got.Fields)
	}
	if now := alice.get(t, task.ID); now.Version != 1 || now.DueAt == nil {
		t.Errorf("refused PATCH changed the task: %+v", now)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM task_events`); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

func repeatString(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// actorRow is the actor columns of one change-log row.
type actorRow struct {
	Op      Op
	TaskID  int64
	Actor   string
	Session *string
}

func actors(t *testing.T, db *testdb.DB, user string) []actorRow {
	t.Helper()
	rows, err := db.Pool.Query(t.Context(), `SELECT op, task_id, actor, session FROM task_events WHERE user_id = $1 ORDER BY seq`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []actorRow
	for rows.Next() {
		var r actorRow
		if err := rows.Scan(&r.Op, &r.TaskID, &r.Actor, &r.Session); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestActorInChangeLog: every write path logs its actor and session, and
// plain SQL, even on a connection the service used a moment before, logs
// sql.
func TestActorInChangeLog(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	// One connection: every statement below runs on the connection the
	// one before it used, so a setting that outlived its transaction
	// would show.
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	svc := NewService(pool)
	ctx := t.Context()
	plainSQL := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}

	// Alone without a key: autocommit, the actor named in the INSERT.
	a, err := svc.Create(ctx, "alice", Fields{Title: ptr("a")}, MutationOptions{Actor: ActorREST})
	if err != nil {
		t.Fatal(err)
	}
	plainSQL(`UPDATE tasks SET title = 'by sql' WHERE id = $1`, a.TaskID)
	// With a key: a transaction.
	if _, err := svc.Create(ctx, "alice", Fields{Title: ptr("b")}, MutationOptions{Actor: ActorSocket, Session: "s-1", IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	plainSQL(`INSERT INTO tasks (user_id, title) VALUES ('alice', 'sql')`)
	if _, err := svc.Update(ctx, "alice", a.TaskID, Fields{Title: ptr("c")}, MutationOptions{Actor: ActorAssistant, Session: "42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetCompleted(ctx, "alice", a.TaskID, ptr(true), MutationOptions{Actor: ActorMCP}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(ctx, "alice", a.TaskID, Fields{Title: ptr("d")}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, "alice", a.TaskID, MutationOptions{Actor: ActorREST}); err != nil {
		t.Fatal(err)
	}
	plainSQL(`DELETE FROM tasks WHERE user_id = 'alice'`)

	s := func(v string) *string { return &v }
	want := []actorRow{
		{OpCreated, a.TaskID, ActorREST, nil},
		{OpUpdated, a.TaskID, ActorSQL, nil},
		{OpCreated, a.TaskID + 1, ActorSocket, s("s-1")},
		{OpCreated, a.TaskID + 2, ActorSQL, nil},
		{OpUpdated, a.TaskID, ActorAssistant, s("42")},
		{OpUpdated, a.TaskID, ActorMCP, nil},
		{OpUpdated, a.TaskID, ActorService, nil},
		{OpDeleted, a.TaskID, ActorREST, nil},
		{OpDeleted, a.TaskID + 1, ActorSQL, nil},
		{OpDeleted, a.TaskID + 2, ActorSQL, nil},
	}
	got := actors(t, db, "alice")
	if !reflect.DeepEqual(fmtActors(got), fmtActors(want)) {
		t.Errorf("actors\n got %v\nwant %v", fmtActors(got), fmtActors(want))
	}
}

func fmtActors(rows []actorRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		sess := "-"
		if r.Session != nil {
			sess = *r.Session
		}
		out[i] = fmt.Sprintf("%s %d %s/%s", r.Op, r.TaskID, r.Actor, sess)
	}
	return out
}

// TestActorInBatches: mutations of different actors that share a
// group-commit transaction (creates joined into one INSERT among them) are
// each logged with their own actor.
func TestActorInBatches(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1, MaxBatch: 64})
	ctx := context.Background()
	seed, err := svc.Create(ctx, "u", Fields{Title: ptr("seed")}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	release, done := holdLeader(t, svc)

	type sent struct{ actor, session string }
	var mu sync.Mutex
	byTask := map[int64][]sent{}
	var wg sync.WaitGroup
	const n = 24
	for i := range n {
		// Runs of the same actor, so that creates can share an INSERT.
		opts := MutationOptions{Actor: []string{ActorSocket, ActorREST, ActorAssistant}[(i/6)%3], Session: fmt.Sprint("s", (i/3)%2)}
		if i%5 == 4 {
			opts.IdempotencyKey = fmt.Sprint("key-", i)
		}
		wg.Go(func() {
			var res Result
			var err error
			if i%4 == 3 {
				res, err = svc.Update(ctx, "u", seed.TaskID, Fields{Title: ptr(fmt.Sprint("t", i))}, opts)
			} else {
				res, err = svc.Create(ctx, "u", Fields{Title: ptr(fmt.Sprint("t", i))}, opts)
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			byTask[res.TaskID] = append(byTask[res.TaskID], sent{opts.Actor, opts.Session})
			mu.Unlock()
		})
		waitQueued(t, svc, i+1)
	}
	close(release)
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if svc.batches.batched.Load() < n || svc.batches.multiInsert.Load() == 0 {
		t.Fatalf("batched %d, multi-row inserted %d: the mutations did not share a transaction", svc.batches.batched.Load(), svc.batches.multiInsert.Load())
	}
	logged := map[int64][]sent{}
	for _, r := range actors(t, db, "u")[1:] {
		sess := ""
		if r.Session != nil {
			sess = *r.Session
		}
		logged[r.TaskID] = append(logged[r.TaskID], sent{r.Actor, sess})
	}
	// Updates of the seed task are logged in commit order, which is the
	// order the batch ran them: compare as sets per task.
	for id, want := range byTask {
		got := logged[id]
		if len(got) != len(want) {
			t.Errorf("task %d: logged %v, sent %v", id, got, want)
			continue
		}
		count := map[sent]int{}
		for _, s := range want {
			count[s]++
		}
		for _, s := range got {
			count[s]--
		}
		for s, c := range count {
			if c != 0 {
				t.Errorf("task %d: actor %v logged %d times too few", id, s, c)
			}
		}
	}
}

// TestTimeFieldsInChangeLog: the change log's task JSON carries the new
// fields exactly as REST does (TestEventJSONMatchesREST covers the rest).
func TestTimeFieldsInChangeLog(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	res := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"t","due_at":"2026-03-29T01:30:00.25+01:00","remind_at":"2026-03-29T00:00:00Z","recurrence":"FREQ=DAILY;COUNT=3","tz":"Europe/London"}`)
	res.wantStatus(t, http.StatusCreated)
	// series_id is the server's; plain SQL may still change it.
	if _, err := e.db.Pool.Exec(t.Context(), `UPDATE tasks SET series_id = id + 1000`); err != nil {
		t.Fatal(err)
	}
	evs := events(t, e.db, "alice")
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	if got, want := mustJSONMap(t, evs[0].Task), res.jsonObject(t); !reflect.DeepEqual(got, want) {
		t.Errorf("created event %v\nREST %v", got, want)
	}
	now := alice.do(t, http.MethodGet, alice.tasksPath(idPath(res.task(t).ID)), "")
	if got, want := mustJSONMap(t, evs[1].Task), now.jsonObject(t); !reflect.DeepEqual(got, want) || want["series_id"] != float64(res.task(t).ID+1000) {
		t.Errorf("updated event %v\nREST %v", got, want)
	}
}
