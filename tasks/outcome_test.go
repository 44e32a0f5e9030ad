package tasks

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"tasksync"
	"tasksync/internal/testdb"
)

// lockTasks holds LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE in a
// transaction of its own until the returned function is called.
func lockTasks(t *testing.T, db *testdb.DB) (unlock func()) {
	t.Helper()
	tx, err := db.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	done := false
	unlock = func() {
		if !done {
			done = true
			if err := tx.Commit(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(unlock)
	return unlock
}

// waitFor polls cond (a count query) until it reaches want; a statement
// waiting on a lock shows in pg_stat_activity.
func waitFor(t *testing.T, db *testdb.DB, what string, want int, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := db.Pool.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d", what, n, want)
		}
		time.Sleep(5 * time.Millisecond) // polling the database, not waiting for time to pass
	}
}

// waitingOnLock counts backends of this database waiting on a lock with a
// query that starts with prefix.
const waitingOnLock = `SELECT count(*) FROM pg_stat_activity
	WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%' || $1 || '%'`

// TestTimedOutMutationReportsWhatCommitted: mutations whose callers give up
// while the table is locked run on once started, and each reply is what
// the database holds after the lock is released: never "failed" for a
// change that committed.
func TestTimedOutMutationReportsWhatCommitted(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	unlock := lockTasks(t, db)

	type out struct {
		res Result
		err error
	}
	plain, keyed := make(chan out, 1), make(chan out, 1)
	ctx, giveUp := context.WithCancel(t.Context())
	go func() {
		r, err := svc.Create(ctx, "alice", Fields{Title: ptr("plain")}, MutationOptions{})
		plain <- out{r, err}
	}()
	go func() {
		r, err := svc.Create(ctx, "alice", Fields{Title: ptr("keyed")}, MutationOptions{IdempotencyKey: "k-1"})
		keyed <- out{r, err}
	}()
	waitFor(t, db, "inserts waiting on the table lock", 2, waitingOnLock, "INSERT INTO tasks")
	giveUp() // the callers' deadline passes while their mutations wait
	unlock()

	for name, ch := range map[string]chan out{"plain": plain, "keyed": keyed} {
		o := <-ch
		if o.err != nil {
			t.Errorf("%s: %v: the caller gave up after its mutation started, so it must get the outcome", name, o.err)
			continue
		}
		var title string
		if err := db.Pool.QueryRow(t.Context(), `SELECT title FROM tasks WHERE id = $1`, o.res.TaskID).Scan(&title); err != nil || title != name {
			t.Errorf("%s: replied task %d, the database holds %q (%v)", name, o.res.TaskID, title, err)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM tasks`); n != 2 {
		t.Errorf("%d tasks, want 2", n)
	}
}

// TestQueuedMutationGivesUpUnavailable: a caller whose context ends while
// its mutation waits in the group-commit queue is answered at once with
// unavailable (retry with the same mutation_id), and nothing is written;
// so is a caller whose context ended before it called.
func TestQueuedMutationGivesUpUnavailable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewServiceWith(db.Pool, BatchOptions{MaxBatches: 1})
	release, blockerDone := holdLeader(t, svc)

	ctx, giveUp := context.WithTimeout(t.Context(), time.Hour)
	errc := make(chan error, 1)
	go func() {
		_, err := svc.Create(ctx, "alice", Fields{Title: ptr("never")}, MutationOptions{IdempotencyKey: "k"})
		errc <- err
	}()
	waitQueued(t, svc, 1)
	giveUp()
	err := <-errc // before the leader is released
	if tasksync.ErrorCode(err) != tasksync.CodeUnavailable || !errors.Is(err, context.Canceled) ||
		!strings.Contains(tasksync.AsError(err).Message, "same mutation_id") {
		t.Errorf("queued and given up: %v", err)
	}
	close(release)
	if err := <-blockerDone; err != nil {
		t.Fatal(err)
	}
	svc.batches.mu.Lock()
	left := len(svc.batches.queue)
	svc.batches.mu.Unlock()
	if left != 0 {
		t.Errorf("%d jobs left in the queue", left)
	}

	gone, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = svc.Create(gone, "alice", Fields{Title: ptr("late")}, MutationOptions{})
	if tasksync.ErrorCode(err) != tasksync.CodeUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired before the call: %v", err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM tasks`); n != 0 {
		t.Errorf("%d tasks, want 0", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM idempotency_keys`); n != 0 {
		t.Errorf("%d idempotency records, want 0", n)
	}
	// The same key is free for the retry.
	if _, err := svc.Create(t.Context(), "alice", Fields{Title: ptr("never")}, MutationOptions{IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
}

// slowCommit makes every COMMIT that wrote an idempotency record wait for
// advisory lock 4242 (a deferred constraint trigger), which the test holds
// until the returned function is called. Only terminating the backend stops
// the wait.
func slowCommit(t *testing.T, db *testdb.DB) (release func()) {
	t.Helper()
	ctx := t.Context()
	for _, sql := range []string{
		// A client that gives up sends a cancel request; the loop ignores
		// it, as a server does once the commit record is written.
		`CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN
		   LOOP
		     BEGIN
		       PERFORM pg_advisory_xact_lock(4242);
		       EXIT;
		     EXCEPTION WHEN query_canceled THEN
		     END;
		   END LOOP;
		   RETURN NULL;
		 END $$`,
		`CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT OR UPDATE ON idempotency_keys
		 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock(4242)`)
			conn.Release()
		}
	}
	t.Cleanup(release)
	return release
}

// TestUnknownCommitResolvedByKey: the connection breaks (our own deadline)
// while COMMIT waits; the server then commits. The keyed mutation reads its
// outcome back from its idempotency record and answers with the task that
// is in the database.
func TestUnknownCommitResolvedByKey(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	svc.txTimeout = 2 * time.Second // reached while COMMIT waits
	release := slowCommit(t, db)

	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := svc.Create(t.Context(), "alice", Fields{Title: ptr("committed late")}, MutationOptions{IdempotencyKey: "k-late"})
		done <- out{r, err}
	}()
	waitFor(t, db, "COMMIT waiting on the advisory lock", 1, waitingOnLock, "commit")
	// Past txTimeout the client closes its connection; the probe that
	// reads the record back then waits on the key of the transaction that
	// is still committing.
	waitFor(t, db, "the probe waiting on the key", 1, waitingOnLock, "INSERT INTO idempotency_keys")
	release()

	o := <-done
	if o.err != nil {
		t.Fatalf("create: %v", o.err)
	}
	got, err := svc.Get(t.Context(), "alice", o.res.TaskID)
	if err != nil || got.Title != "committed late" || o.res.Task == nil || o.res.Task.Version != got.Version {
		t.Fatalf("replied %+v; the database holds %+v (%v)", o.res.Task, got, err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

// TestUnknownCommitNotCommitted: the backend is terminated while its COMMIT
// waits (FATAL 57P01, which by itself does not say whether the commit
// happened); the record shows it did not, and the answer says the change
// was not applied.
func TestUnknownCommitNotCommitted(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	slowCommit(t, db)

	errc := make(chan error, 1)
	go func() {
		_, err := svc.Create(t.Context(), "alice", Fields{Title: ptr("killed")}, MutationOptions{IdempotencyKey: "k-killed"})
		errc <- err
	}()
	waitFor(t, db, "COMMIT waiting on the advisory lock", 1, waitingOnLock, "commit")
	if _, err := db.Pool.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE 'commit%'`); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if tasksync.ErrorCode(err) != tasksync.CodeUnavailable || !strings.Contains(tasksync.AsError(err).Message, "not applied") {
		t.Fatalf("create: %v", err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM tasks`); n != 0 {
		t.Errorf("%d tasks, want 0", n)
	}
}

// TestUnknownOutcomeWithoutKey: a create without key whose statement
// outlives the write timeout (the table is locked) cannot know whether it
// committed (the cancel request pgx sends when it gives up may arrive after
// the commit): the answer is unavailable saying so, never internal.
func TestUnknownOutcomeWithoutKey(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	svc.txTimeout = 300 * time.Millisecond
	lockTasks(t, db)

	_, err := svc.Create(t.Context(), "alice", Fields{Title: ptr("maybe")}, MutationOptions{})
	if tasksync.ErrorCode(err) != tasksync.CodeUnavailable || !strings.Contains(tasksync.AsError(err).Message, "unknown") {
		t.Fatalf("create: %v", err)
	}
}
