package tasks

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tasksync"
	"tasksync/internal/testdb"
)

// TestGroupCommitIsolatesMutations: many concurrent mutations share
// transactions; each one's failure (not found, stale version, reused key)
// stays its own, every success is applied exactly once, and the user's
// change log stays gap-free.
func TestGroupCommitIsolatesMutations(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1, MaxBatch: 16})
	ctx := context.Background()
	str := func(s string) *string { return &s }

	base, err := svc.Create(ctx, "u", Fields{Title: str("base")}, MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, "u", Fields{Title: str("keyed")}, MutationOptions{IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}

	const n = 60
	type outcome struct {
		kind string
		res  Result
		err  error
	}
	out := make([]outcome, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			var o outcome
			user := fmt.Sprintf("user-%d", i%3)
			switch i % 5 {
			case 0, 1:
				o.kind = "create"
				o.res, o.err = svc.Create(ctx, user, Fields{Title: str(fmt.Sprint("t", i))}, MutationOptions{})
			case 2:
				o.kind = "missing"
				o.res, o.err = svc.Update(ctx, "u", 999999, Fields{Title: str("x")}, MutationOptions{})
			case 3:
				o.kind = "stale"
				o.res, o.err = svc.Update(ctx, "u", base.TaskID, Fields{Title: str("x")}, MutationOptions{IfVersion: 7})
			case 4:
				o.kind = "reused key"
				o.res, o.err = svc.Create(ctx, "u", Fields{Title: str("another body")}, MutationOptions{IdempotencyKey: "k"})
			}
			out[i] = o
		}()
	}
	start.Done()
	wg.Wait()

	created := 0
	for i, o := range out {
		want := map[string]tasksync.Code{"missing": tasksync.CodeNotFound, "stale": tasksync.CodeVersionMismatch, "reused key": tasksync.CodeConflict}[o.kind]
		if o.kind == "create" {
			// Creates batched into one multi-row INSERT each get their own row.
			if o.err != nil || o.res.Op != OpCreated || o.res.Task.Title != fmt.Sprint("t", i) ||
				o.res.Task.UserID != fmt.Sprintf("user-%d", i%3) || o.res.TaskID != o.res.Task.ID {
				t.Errorf("%d create: %+v %v", i, o.res.Task, o.err)
			}
			var title string
			_ = db.Pool.QueryRow(ctx, `SELECT title FROM tasks WHERE id = $1`, o.res.TaskID).Scan(&title)
			if title != fmt.Sprint("t", i) {
				t.Errorf("%d create: row %d holds %q", i, o.res.TaskID, title)
			}
			created++
			continue
		}
		if got := tasksync.ErrorCode(o.err); got != want {
			t.Errorf("%d %s: code %q, want %q", i, o.kind, got, want)
		}
	}
	if svc.batches.batched.Load() == 0 || svc.batches.multiInsert.Load() == 0 {
		t.Fatalf("batched %d, multi-row inserted %d: the batch paths were not exercised", svc.batches.batched.Load(), svc.batches.multiInsert.Load())
	}
	var rows int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE user_id LIKE 'user-%'`).Scan(&rows)
	if rows != created {
		t.Fatalf("%d rows for %d creates", rows, created)
	}
	if v, _ := svc.Get(ctx, "u", base.TaskID); v.Version != 1 || v.Title != "base" {
		t.Fatalf("failed updates changed the task: %+v", v)
	}
	for _, user := range []string{"user-0", "user-1", "user-2", "u"} {
		var count, maxSeq int64
		_ = db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(max(seq),0) FROM task_events WHERE user_id = $1`, user).Scan(&count, &maxSeq)
		if count != maxSeq {
			t.Fatalf("%s: %d events up to seq %d: a gap", user, count, maxSeq)
		}
	}
}

// TestGroupCommitSkipsAbandonedMutations: a mutation whose caller gave up
// while it was queued behind a running batch is not applied.
func TestGroupCommitSkipsAbandonedMutations(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1})
	ctx := context.Background()

	// Hold the only leader inside its transaction.
	release, blockerDone := holdLeader(t, svc)

	gone, cancel := context.WithCancel(ctx)
	title := "never"
	abandoned := make(chan error, 1)
	go func() {
		_, err := svc.Create(gone, "u", Fields{Title: &title}, MutationOptions{})
		abandoned <- err
	}()
	kept := "kept"
	keptDone := make(chan error, 1)
	go func() {
		_, err := svc.Create(ctx, "u", Fields{Title: &kept}, MutationOptions{})
		keptDone <- err
	}()
	// Both are queued once the queue holds two jobs.
	deadline := time.Now().Add(10 * time.Second)
	for {
		svc.batches.mu.Lock()
		n := len(svc.batches.queue)
		svc.batches.mu.Unlock()
		if n == 2 {
			break
		}
		select {
		case err := <-abandoned:
			t.Fatalf("create returned before it was queued: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the creates never queued behind the running batch")
		}
		runtime.Gosched() // the two goroutines are about to queue
	}
	cancel()
	close(release)
	if err := <-blockerDone; err != nil {
		t.Fatal(err)
	}
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned create: %v", err)
	}
	if err := <-keptDone; err != nil {
		t.Fatalf("kept create: %v", err)
	}
	var titles []string
	rows, _ := db.Pool.Query(ctx, `SELECT title FROM tasks WHERE user_id = 'u'`)
	titles, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	if len(titles) != 1 || titles[0] != "kept" {
		t.Fatalf("tasks: %v", titles)
	}
}

// TestGroupCommitRerunsAfterAnSQLError: a mutation that fails in the
// database aborts its batch's transaction; the others are applied on their
// own and the failure stays with the one that caused it.
func TestGroupCommitRerunsAfterAnSQLError(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1})
	ctx := context.Background()

	release, _ := holdLeader(t, svc)

	// Queue a good create, a mutation whose SQL fails, a keyed create.
	type out struct {
		res Result
		err error
	}
	results := make([]chan out, 3)
	for i := range results {
		results[i] = make(chan out, 1)
	}
	title := "good"
	go func() {
		r, err := svc.Create(ctx, "u", Fields{Title: &title}, MutationOptions{})
		results[0] <- out{r, err}
	}()
	waitQueued(t, svc, 1)
	go func() {
		r, err := svc.mutate(ctx, "u", MutationOptions{}, "bad", func(ctx context.Context, tx querier) (Result, error) {
			_, err := tx.Exec(ctx, `INSERT INTO tasks (user_id, title) VALUES ('u', '')`) // violates the title CHECK
			return Result{}, err
		})
		results[1] <- out{r, err}
	}()
	waitQueued(t, svc, 2)
	keyed := "keyed"
	go func() {
		r, err := svc.Create(ctx, "u", Fields{Title: &keyed}, MutationOptions{IdempotencyKey: "k1"})
		results[2] <- out{r, err}
	}()
	waitQueued(t, svc, 3)
	close(release)

	good, bad, withKey := <-results[0], <-results[1], <-results[2]
	if good.err != nil || withKey.err != nil {
		t.Fatalf("good: %v, keyed: %v", good.err, withKey.err)
	}
	if bad.err == nil || refusal(bad.err) {
		t.Fatalf("the bad mutation: %v", bad.err)
	}
	if svc.BatchReruns() != 3 {
		t.Fatalf("reruns = %d, want the 3 of the aborted batch", svc.BatchReruns())
	}
	var titles []string
	rows, _ := db.Pool.Query(ctx, `SELECT title FROM tasks WHERE user_id = 'u' ORDER BY id`)
	titles, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	if len(titles) != 2 || titles[0] != "good" || titles[1] != "keyed" {
		t.Fatalf("tasks: %v", titles)
	}
	// The keyed create's record survived the rerun: a retry replays it.
	again, err := svc.Create(ctx, "u", Fields{Title: &keyed}, MutationOptions{IdempotencyKey: "k1"})
	if err != nil || !again.Replayed || again.TaskID != withKey.res.TaskID {
		t.Fatalf("retry: %+v %v", again, err)
	}
}

// TestGroupCommitReleasesRefusedKeys: a keyed mutation refused inside a
// batch leaves no idempotency record behind, so a corrected retry with the
// same key is applied.
func TestGroupCommitReleasesRefusedKeys(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1})
	ctx := context.Background()
	release, _ := holdLeader(t, svc)
	errc := make(chan error, 2)
	title := "x"
	go func() {
		_, err := svc.Update(ctx, "u", 424242, Fields{Title: &title}, MutationOptions{IdempotencyKey: "k2"})
		errc <- err
	}()
	waitQueued(t, svc, 1)
	go func() {
		_, err := svc.Create(ctx, "u", Fields{Title: &title}, MutationOptions{})
		errc <- err
	}()
	waitQueued(t, svc, 2)
	close(release)
	var codes []tasksync.Code
	for range 2 {
		codes = append(codes, tasksync.ErrorCode(<-errc))
	}
	if svc.batches.batched.Load() < 2 || svc.batches.reruns.Load() != 0 {
		t.Fatalf("batched %d, reruns %d: the refusal should not abort the batch", svc.batches.batched.Load(), svc.batches.reruns.Load())
	}
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE key = 'k2'`).Scan(&n)
	if n != 0 {
		t.Fatalf("the refused mutation left its key record (codes %v)", codes)
	}
}

func waitQueued(t *testing.T, svc *Service, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		svc.batches.mu.Lock()
		q := len(svc.batches.queue)
		svc.batches.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mutations queued", q, n)
		}
		runtime.Gosched()
	}
}

// holdLeader keeps the only batch leader of svc (MaxBatches 1) busy inside
// its transaction until release is closed, so that the mutations submitted
// meanwhile queue up and form the next batch. done reports the held
// mutation's own result.
func holdLeader(t *testing.T, svc *Service) (release chan struct{}, done chan error) {
	t.Helper()
	release, done = make(chan struct{}), make(chan error, 1)
	entered := make(chan struct{})
	go func() {
		_, err := svc.mutate(context.Background(), "u", MutationOptions{}, "block", func(ctx context.Context, tx querier) (Result, error) {
			close(entered)
			<-release
			return Result{Op: OpUpdated}, nil
		})
		done <- err
	}()
	<-entered
	return release, done
}

// poisonMutations are mutations the database would refuse (SQLSTATE 22021
// for a NUL, 22P05 in jsonb, CHECK violations): each must be refused before
// it joins a batch, with a client error, so that it cannot roll back the
// other mutations of its batch.
var poisonMutations = []struct {
	name string
	user string
	f    Fields
	opts MutationOptions
	code tasksync.Code
}{
	{"NUL in key", "mallory", Fields{Title: ptr("t")}, MutationOptions{IdempotencyKey: "a\x00b"}, tasksync.CodeBadRequest},
	{"invalid UTF-8 key", "mallory", Fields{Title: ptr("t")}, MutationOptions{IdempotencyKey: "bad\xff\xfe"}, tasksync.CodeBadRequest},
	{"U+FFFD key", "mallory", Fields{Title: ptr("t")}, MutationOptions{IdempotencyKey: "a\uFFFDb"}, tasksync.CodeBadRequest},
	{"over-long key", "mallory", Fields{Title: ptr("t")}, MutationOptions{IdempotencyKey: strings.Repeat("k", MaxIdempotencyKey+1)}, tasksync.CodeBadRequest},
	{"space in key", "mallory", Fields{Title: ptr("t")}, MutationOptions{IdempotencyKey: "a b"}, tasksync.CodeBadRequest},
	{"NUL in user", "mal\x00lory", Fields{Title: ptr("t")}, MutationOptions{}, tasksync.CodeBadRequest},
	{"NUL in user, keyed", "mal\x00lory", Fields{Title: ptr("t")}, MutationOptions{IdempotencyKey: "ok"}, tasksync.CodeBadRequest},
	{"over-long user", strings.Repeat("u", 257), Fields{Title: ptr("t")}, MutationOptions{}, tasksync.CodeBadRequest},
	{"NUL in title", "mallory", Fields{Title: ptr("a\x00b")}, MutationOptions{}, tasksync.CodeInvalid},
	{"invalid UTF-8 title", "mallory", Fields{Title: ptr("bad\xff\xfe")}, MutationOptions{}, tasksync.CodeInvalid},
	{"NUL in tag", "mallory", Fields{Title: ptr("t"), Tags: &[]string{"x\x00"}}, MutationOptions{IdempotencyKey: "k2"}, tasksync.CodeInvalid},
	{"NUL in description", "mallory", Fields{Title: ptr("t"), Description: ptr("\x00")}, MutationOptions{}, tasksync.CodeInvalid},
	{"NUL in session", "mallory", Fields{Title: ptr("t")}, MutationOptions{Actor: ActorSocket, Session: "s\x00"}, tasksync.CodeBadRequest},
	{"over-long actor", "mallory", Fields{Title: ptr("t")}, MutationOptions{Actor: strings.Repeat("a", MaxActor+1), IdempotencyKey: "k3"}, tasksync.CodeBadRequest},
	{"NUL in tz", "mallory", Fields{Title: ptr("t"), TZSet: true, TZ: ptr("UTC\x00")}, MutationOptions{}, tasksync.CodeInvalid},
	{"rule without due", "mallory", Fields{Title: ptr("t"), RecurrenceSet: true, Recurrence: ptr("FREQ=DAILY")}, MutationOptions{}, tasksync.CodeInvalid},
	{"over-long rule", "mallory", Fields{Title: ptr("t"), DueSet: true, DueAt: ptr(time.Now()), RecurrenceSet: true, Recurrence: ptr("FREQ=DAILY;BYHOUR=1" + strings.Repeat(",1", 300))}, MutationOptions{}, tasksync.CodeInvalid},
}

// TestPoisonMutationsNeverFailABatch: poison mutations submitted amid other
// users' writes, both queued into the same batch (behind a held leader) and
// freely concurrent, are each refused with a client error; no batch is
// rolled back (reruns stays 0) and every valid write is applied once.
func TestPoisonMutationsNeverFailABatch(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1, MaxBatch: 64})
	ctx := t.Context()

	type outcome struct {
		poison int // index into poisonMutations, or -1
		title  string
		user   string
		res    Result
		err    error
	}
	results := make(chan outcome, 512)
	submit := func(i int, poison bool) {
		if poison {
			p := poisonMutations[i%len(poisonMutations)]
			res, err := svc.Create(ctx, p.user, p.f, p.opts)
			results <- outcome{poison: i % len(poisonMutations), res: res, err: err}
			return
		}
		user := fmt.Sprintf("user-%d", i%4)
		title := fmt.Sprint("valid ", i)
		opts := MutationOptions{}
		if i%2 == 0 {
			opts.IdempotencyKey = fmt.Sprint("key-", i)
		}
		res, err := svc.Create(ctx, user, Fields{Title: &title}, opts)
		results <- outcome{poison: -1, title: title, user: user, res: res, err: err}
	}

	// Round 1: everything queued behind a held leader forms one batch.
	release, blockerDone := holdLeader(t, svc)
	queued := 0
	for i := range 2 * len(poisonMutations) {
		go submit(i, false)
		queued++
		waitQueued(t, svc, queued)
		go submit(i, true)
	}
	close(release)
	if err := <-blockerDone; err != nil {
		t.Fatal(err)
	}
	var got []outcome
	for range 2 * queued {
		got = append(got, <-results)
	}

	// Round 2: free-for-all, poison and valid writes at once.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() { submit(1000+i, i%3 == 0) })
	}
	wg.Wait()
	for len(results) > 0 {
		got = append(got, <-results)
	}

	valid := 0
	for _, o := range got {
		if o.poison >= 0 {
			p := poisonMutations[o.poison]
			if code := tasksync.ErrorCode(o.err); code != p.code {
				t.Errorf("%s: code %q (%v), want %q", p.name, code, o.err, p.code)
			}
			continue
		}
		valid++
		if o.err != nil || o.res.Task == nil || o.res.Task.Title != o.title || o.res.Task.UserID != o.user {
			t.Errorf("valid write %q of %s: %+v, %v", o.title, o.user, o.res.Task, o.err)
		}
	}
	if r := svc.batches.reruns.Load(); r != 0 {
		t.Errorf("%d mutations rerun after a batch failed, want 0", r)
	}
	if svc.batches.batched.Load() < int64(queued) {
		t.Errorf("batched %d, want at least the %d queued together", svc.batches.batched.Load(), queued)
	}
	if n := countRows(t, db, `SELECT count(*) FROM tasks WHERE title LIKE 'valid %'`); n != valid {
		t.Errorf("%d valid rows for %d valid writes", n, valid)
	}
	if n := countRows(t, db, `SELECT count(*) FROM tasks WHERE user_id NOT LIKE 'user-%'`); n != 0 {
		t.Errorf("%d poison rows stored", n)
	}
}

// TestPoisonRequestsNeverFailABatch is TestPoisonMutationsNeverFailABatch
// from outside: REST requests the database would refuse, sent amid other
// users' creates, are answered with client errors and roll nothing back.
func TestPoisonRequestsNeverFailABatch(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	type poison struct{ body, key string }
	poisons := []poison{
		{`{"title":"t"}`, "bad\xff\xfe"},
		{`{"title":"t"}`, strings.Repeat("k", MaxIdempotencyKey+1)},
		{`{"title":"t"}`, "a b"},
		{`{"title":"a\u0000b"}`, "nul-title"},
		{`{"title":"t","tags":["x\u0000"]}`, ""},
		{`{"title":"t","description":"\u0000"}`, ""},
		{"{\"title\":\"bad\xff\xfe\"}", "utf8-title"},
		{`{"title":"\ud800"}`, ""},
	}
	var wg sync.WaitGroup
	var bad sync.Map
	for i := range 120 {
		wg.Go(func() {
			if i%3 == 0 {
				p := poisons[i/3%len(poisons)]
				var headers []string
				if p.key != "" {
					headers = []string{"Idempotency-Key", p.key}
				}
				res, err := e.as(t, "mallory").send(t.Context(), "POST", "/api/mallory/tasks", p.body, headers...)
				if err != nil || (res.status != 400 && res.status != 422) {
					bad.Store(i, fmt.Sprintf("poison %q key %q: %d %s %v", p.body, p.key, res.status, res.body, err))
				}
				return
			}
			user := fmt.Sprintf("user-%d", i%4)
			res, err := e.as(t, user).send(t.Context(), "POST", "/api/"+user+"/tasks", fmt.Sprintf(`{"title":"valid %d"}`, i), "Idempotency-Key", fmt.Sprint("k", i))
			if err != nil || res.status != 201 {
				bad.Store(i, fmt.Sprintf("valid %d: %d %s %v", i, res.status, res.body, err))
			}
		})
	}
	wg.Wait()
	bad.Range(func(_, v any) bool { t.Error(v); return true })
	if r := e.svc.batches.reruns.Load(); r != 0 {
		t.Errorf("%d mutations rerun after a batch failed, want 0", r)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks WHERE title LIKE 'valid %'`); n != 80 {
		t.Errorf("%d valid rows, want 80", n)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks WHERE user_id = 'mallory'`); n != 0 {
		t.Errorf("%d poison rows stored", n)
	}
}

// TestMultiRowInsertGivesEachCallerItsRow: creates queued together are
// inserted by one multi-row INSERT, and every caller gets back its own row
// (title, tags, due date and user), which is the row stored under that id.
func TestMultiRowInsertGivesEachCallerItsRow(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1, MaxBatch: 64})
	release, blockerDone := holdLeader(t, svc)

	const n = 40
	type out struct {
		i   int
		res Result
		err error
	}
	results := make(chan out, n)
	for i := range n {
		go func() {
			due := time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC)
			f := Fields{Title: ptr(fmt.Sprint("title ", i)), Tags: &[]string{fmt.Sprint("tag", i)}, DueSet: true, DueAt: &due}
			if i%5 == 0 {
				f.Tags = &[]string{} // rows of different shapes in one statement
				f.DueAt = nil
			}
			r, err := svc.Create(t.Context(), fmt.Sprintf("user-%d", i%7), f, MutationOptions{})
			results <- out{i, r, err}
		}()
		waitQueued(t, svc, i+1)
	}
	close(release)
	if err := <-blockerDone; err != nil {
		t.Fatal(err)
	}
	for range n {
		o := <-results
		if o.err != nil {
			t.Fatalf("create %d: %v", o.i, o.err)
		}
		got := o.res.Task
		if got.Title != fmt.Sprint("title ", o.i) || got.UserID != fmt.Sprintf("user-%d", o.i%7) || o.res.TaskID != got.ID {
			t.Errorf("create %d got %+v", o.i, got)
		}
		if o.i%5 != 0 && (len(got.Tags) != 1 || got.Tags[0] != fmt.Sprint("tag", o.i) || got.DueAt == nil || got.DueAt.Day() != 1+o.i%31) {
			t.Errorf("create %d: tags %v due %v", o.i, got.Tags, got.DueAt)
		}
		stored, err := svc.Get(t.Context(), got.UserID, got.ID)
		if err != nil || stored.Title != got.Title || !sameEditable(stored, *got) || stored.Version != got.Version {
			t.Errorf("create %d: replied %+v, stored %+v (%v)", o.i, got, stored, err)
		}
	}
	if m := svc.batches.multiInsert.Load(); m < n-1 {
		t.Errorf("%d creates went through the multi-row INSERT, want at least %d", m, n-1)
	}
}
