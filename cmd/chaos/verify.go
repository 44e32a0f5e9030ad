package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// maxDetails bounds the examples kept of each kind of failure.
const maxDetails = 20

// verification is what the database says of the run.
type verification struct {
	Lost          int      `json:"lost"`
	Duplicated    int      `json:"duplicated"`
	Reordered     int      `json:"reordered"`
	ModelMismatch int      `json:"writer_model_mismatches"`
	Unresolved    int      `json:"unresolved"`
	LogGaps       int      `json:"change_log_gaps"`
	ReadersBehind int      `json:"readers_behind"`
	ReaderDiffers int      `json:"readers_differing_from_database"`
	PoisonStored  int      `json:"poison_changes_stored"`
	ReplacementCh int      `json:"titles_with_replacement_character"`
	Details       []string `json:"details,omitempty"`
}

func (v *verification) detail(format string, args ...any) {
	if len(v.Details) < maxDetails {
		v.Details = append(v.Details, fmt.Sprintf(format, args...))
	}
}

type event struct {
	seq       int64
	op        string
	taskID    int64
	title     string
	completed bool
}

// verify waits for the readers to catch up with the database and compares
// everything with it.
func (h *harness) verify(ctx context.Context) (*result, error) {
	res := h.newResult()
	v := &res.Verification
	pool, err := pgxpool.New(ctx, h.dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect for verification: %w", err)
	}
	defer pool.Close()

	// The last seq of every user, then every reader at it.
	var seqs map[string]int64
	caughtUp := func() bool {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		rows, err := pool.Query(qctx, "SELECT user_id, seq FROM user_seqs")
		if err != nil {
			return false
		}
		m := map[string]int64{}
		for rows.Next() {
			var u string
			var s int64
			if rows.Scan(&u, &s) == nil {
				m[u] = s
			}
		}
		if rows.Err() != nil {
			return false
		}
		seqs = m
		for _, r := range h.readers {
			if r.lastSeq.Load() < seqs[r.user] {
				return false
			}
		}
		return true
	}
	h.waitFor(ctx, h.cfg.Drain, "every reader at its user's last seq", caughtUp)
	if seqs == nil {
		return nil, fmt.Errorf("could not read user_seqs from the private database")
	}
	for _, r := range h.readers {
		if got, want := r.lastSeq.Load(), seqs[r.user]; got != want {
			v.ReadersBehind++
			v.detail("a %s socket of %s ended at seq %d, the database at %d", r.role(), r.user, got, want)
		}
	}

	for _, w := range h.writers {
		events, err := h.loadEvents(ctx, pool, w.user)
		if err != nil {
			return nil, err
		}
		rows, err := h.loadTasks(ctx, pool, w.user)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		h.checkWriter(v, w, events, rows)
		w.mu.Unlock()
		for _, r := range h.readers {
			if r.user == w.user {
				h.checkReader(v, r, rows)
			}
		}
	}

	// Poison must not have changed anything, and no title may hold the
	// replacement character that invalid UTF-8 would turn into.
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pool.QueryRow(qctx, "SELECT count(*) FROM task_events WHERE user_id = ANY($1)", h.poisonUsers).Scan(&v.PoisonStored); err != nil {
		return nil, fmt.Errorf("count poison changes: %w", err)
	}
	if err := pool.QueryRow(qctx, "SELECT count(*) FROM tasks WHERE strpos(title, chr(65533)) > 0").Scan(&v.ReplacementCh); err != nil {
		return nil, fmt.Errorf("count replacement characters: %w", err)
	}
	return res, nil
}

func (h *harness) loadEvents(ctx context.Context, pool *pgxpool.Pool, user string) ([]event, error) {
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := pool.Query(qctx, `SELECT seq, op, task_id, coalesce(task->>'title', ''), coalesce((task->>'completed')::bool, false)
		FROM task_events WHERE user_id = $1 ORDER BY seq`, user)
	if err != nil {
		return nil, fmt.Errorf("read the change log of %s: %w", user, err)
	}
	var out []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.seq, &e.op, &e.taskID, &e.title, &e.completed); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (h *harness) loadTasks(ctx context.Context, pool *pgxpool.Pool, user string) (map[int64]taskView, error) {
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := pool.Query(qctx, "SELECT id, title, description, completed, version FROM tasks WHERE user_id = $1", user)
	if err != nil {
		return nil, fmt.Errorf("read the tasks of %s: %w", user, err)
	}
	out := map[int64]taskView{}
	for rows.Next() {
		var t taskView
		if err := rows.Scan(&t.ID, &t.Title, &t.Description, &t.Completed, &t.Version); err != nil {
			return nil, err
		}
		out[t.ID] = t
	}
	return out, rows.Err()
}

// opKey names what a mutation does in a way the change log shows too.
func opKey(m *mutation) string {
	switch m.kind {
	case kindCreate:
		return "create"
	case kindUpdate:
		return "update " + m.title
	case kindComplete:
		return "toggle"
	}
	return "delete"
}

// checkWriter compares one writer's mutations with the change log and the
// table. Every acknowledged mutation must appear exactly once, in the order
// it was acknowledged (a task has one mutation in flight at a time, so
// that order is the order of its changes); an unanswered one at most once.
func (h *harness) checkWriter(v *verification, w *writer, events []event, rows map[int64]taskView) {
	// The log itself: seqs 1..n with no hole.
	for i, e := range events {
		if e.seq != int64(i+1) {
			v.LogGaps++
			v.detail("%s: the change log jumps to seq %d after %d", w.user, e.seq, i)
			break
		}
	}

	// What the log says each task went through.
	type last struct {
		title     string
		completed bool
	}
	createdByTitle := map[string]int{}
	perTask := map[int64][]string{}
	prev := map[int64]last{}
	for _, e := range events {
		var key string
		switch e.op {
		case "created":
			createdByTitle[e.title]++
			key = "create"
		case "updated":
			p := prev[e.taskID]
			switch {
			case e.title != p.title:
				key = "update " + e.title
			case e.completed != p.completed:
				key = "toggle"
			default:
				key = "update that changed nothing visible"
			}
		case "deleted":
			key = "delete"
		}
		prev[e.taskID] = last{e.title, e.completed}
		perTask[e.taskID] = append(perTask[e.taskID], key)
	}

	for _, m := range w.muts {
		if !m.settled {
			v.Unresolved++
			v.detail("%s: mutation %s (%s) never answered", w.user, m.mid, m.kind)
		}
		if m.kind == kindCreate {
			if c := createdByTitle[m.title]; c > 1 {
				v.Duplicated += c - 1
				v.detail("%s: create %s made %d tasks", w.user, m.mid, c)
			}
		}
	}

	for _, t := range w.tasks {
		var want []string
		for _, m := range t.ops {
			want = append(want, opKey(m))
		}
		got := perTask[t.id]
		wantN, gotN := counts(want), counts(got)
		var maybe string // an unanswered mutation may or may not have been applied
		if t.pending != nil && !t.pending.settled {
			maybe = opKey(t.pending)
		}
		bad := false
		for _, k := range slices.Sorted(maps.Keys(union(wantN, gotN))) {
			d := gotN[k] - wantN[k]
			if k == maybe && d == 1 {
				d = 0
			}
			switch {
			case d < 0:
				v.Lost += -d
				bad = true
				v.detail("%s: task %d lost %d× %q (acknowledged; log has %v)", w.user, t.id, -d, k, got)
			case d > 0:
				v.Duplicated += d
				bad = true
				v.detail("%s: task %d has %d× %q more than acknowledged (log has %v, acks %v)", w.user, t.id, d, k, got, want)
			}
		}
		if !bad && !slices.Equal(trimMaybe(got, maybe, len(want)), want) {
			v.Reordered++
			v.detail("%s: task %d changes in another order than acknowledged: log %v, acks %v", w.user, t.id, got, want)
		}

		// The table agrees with the model of acknowledged changes.
		if maybe != "" {
			continue
		}
		row, exists := rows[t.id]
		switch {
		case t.deleted && exists:
			v.ModelMismatch++
			v.detail("%s: task %d was deleted (acknowledged) but is in the table", w.user, t.id)
		case !t.deleted && !exists:
			v.ModelMismatch++
			v.detail("%s: task %d is missing from the table", w.user, t.id)
		case exists && (row.Title != t.title || row.Completed != t.completed):
			v.ModelMismatch++
			v.detail("%s: task %d is %q completed=%v in the table, acknowledged %q completed=%v", w.user, t.id, row.Title, row.Completed, t.title, t.completed)
		}
	}
}

// trimMaybe drops an extra trailing change made by an unanswered mutation.
func trimMaybe(got []string, maybe string, want int) []string {
	if maybe != "" && len(got) == want+1 && got[len(got)-1] == maybe {
		return got[:want]
	}
	return got
}

func counts(keys []string) map[string]int {
	m := map[string]int{}
	for _, k := range keys {
		m[k]++
	}
	return m
}

func union(a, b map[string]int) map[string]int {
	m := maps.Clone(a)
	for k, v := range b {
		m[k] += v
	}
	return m
}

// checkReader compares the task list a reader rebuilt from events with the
// table.
func (h *harness) checkReader(v *verification, r *reader, rows map[int64]taskView) {
	got := r.view()
	missing, extra, differ := 0, 0, 0
	for id, want := range rows {
		g, ok := got[id]
		switch {
		case !ok:
			missing++
		case g != want:
			differ++
		}
	}
	for id := range got {
		if _, ok := rows[id]; !ok {
			extra++
		}
	}
	if missing+extra+differ > 0 {
		v.ReaderDiffers++
		v.detail("a %s socket of %s: %d tasks missing, %d extra, %d different from the table", r.role(), r.user, missing, extra, differ)
	}
}
