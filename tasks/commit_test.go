package tasks

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
	if svc.batches.reruns.Load() != 3 {
		t.Fatalf("reruns = %d, want the 3 of the aborted batch", svc.batches.reruns.Load())
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
