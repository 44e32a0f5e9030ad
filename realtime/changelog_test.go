package realtime

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"tasksync/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestChangeLogReadsAndPrunes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO tasks (user_id, title) SELECT 'u1', 't' || i FROM generate_series(1, 5) i`)
	exec(`INSERT INTO tasks (user_id, title) SELECT 'u2', 't' || i FROM generate_series(1, 3) i`)
	exec(`UPDATE tasks SET completed = true WHERE user_id = 'u2'`)
	log := NewChangeLog(db.Pool)

	if seq, err := log.CurrentSeq(ctx, "u2"); err != nil || seq != 6 {
		t.Fatalf("current seq of u2: %d, %v", seq, err)
	}
	if seq, err := log.CurrentSeq(ctx, "nobody"); err != nil || seq != 0 {
		t.Fatalf("current seq of a new user: %d, %v", seq, err)
	}
	evs, err := log.Read(ctx, "u1", 1, 4, 10)
	if err != nil || len(evs) != 3 || evs[0].Seq != 2 || evs[2].Seq != 4 || evs[0].Op != "created" {
		t.Fatalf("read: %v %v", evs, err)
	}
	// One batched read: per-user cursors and limits, grouped by user.
	evs, err = log.ReadAfter(ctx, map[string]int64{"u1": 3, "u2": 0, "u3": 0}, 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.UserID+":"+e.Op[:1]+strconv.FormatInt(e.Seq, 10))
	}
	want := []string{"u1:c4", "u1:c5", "u2:c1", "u2:c2", "u2:c3", "u2:u4"}
	if len(got) != len(want) {
		t.Fatalf("batch %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("batch %v, want %v", got, want)
		}
	}

	// The grouped catch-up forms: seqs of several users (0 for a new one),
	// and ranges of any users, each answered in order and within its bounds.
	seqs, err := log.CurrentSeqs(ctx, []string{"u1", "u2", "nobody"})
	if err != nil || seqs["u1"] != 5 || seqs["u2"] != 6 || seqs["nobody"] != 0 {
		t.Fatalf("current seqs: %v, %v", seqs, err)
	}
	ranges, err := log.ReadRanges(ctx, []logRange{{"u2", 3, 6}, {"u1", 0, 2}, {"nobody", 0, 9}, {"u1", 3, 99}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for i, evs := range ranges {
		for _, e := range evs {
			got = append(got, strconv.Itoa(i)+e.UserID+":"+strconv.FormatInt(e.Seq, 10))
		}
	}
	want = []string{"0u2:4", "0u2:5", "1u1:1", "1u1:2", "3u1:4", "3u1:5"}
	if strings.Join(got, " ") != strings.Join(want, " ") || len(ranges) != 4 {
		t.Fatalf("ranges %v, want %v", got, want)
	}
	if f := string(ranges[0][0].Frame()); !strings.HasPrefix(f, `{"type":"task.updated","seq":4,`) {
		t.Fatalf("frame of a ranged read: %s", f)
	}

	// Events older than the retention go; newer ones stay.
	exec(`UPDATE task_events SET created_at = now() - interval '2 hours' WHERE user_id = 'u1' AND seq <= 3`)
	n, err := log.Prune(ctx, time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	var left int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM task_events`).Scan(&left)
	if left != 8 {
		t.Fatalf("%d events left, want 8", left)
	}
}

// A page of a catch-up reads at most its limit of rows whatever plan
// Postgres picks: here a bitmap heap scan and a sort (the plan stale
// statistics led to), which with LIMIT alone read the whole rest of the
// range for every page.
func TestChangeLogPageReadsAtMostItsLimit(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO tasks (user_id, title) SELECT 'far', 't' || i FROM generate_series(1, 2000) i`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan []byte
	if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+readSQL, "far", int64(100), int64(2000), 256).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	type node struct {
		NodeType   string  `json:"Node Type"`
		ActualRows float64 `json:"Actual Rows"`
		Plans      []node  `json:"Plans"`
	}
	var out []struct{ Plan node }
	if err := json.Unmarshal(plan, &out); err != nil || len(out) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	var scanned float64
	var types []string
	var walk func(n node)
	walk = func(n node) {
		types = append(types, n.NodeType)
		if strings.HasSuffix(n.NodeType, "Scan") {
			scanned = max(scanned, n.ActualRows)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(out[0].Plan)
	if scanned == 0 || scanned > 256 {
		t.Fatalf("plan %v read %v rows for a page of 256", types, scanned)
	}
	// The page itself is unchanged: seqs 101..356.
	log := NewChangeLog(db.Pool)
	evs, err := log.Read(ctx, "far", 100, 2000, 256)
	if err != nil || len(evs) != 256 || evs[0].Seq != 101 || evs[255].Seq != 356 {
		t.Fatalf("page: %d events, %v", len(evs), err)
	}
	ranges, err := log.ReadRanges(ctx, []logRange{{"far", 1990, 2000}, {"far", 100, 2000}}, 256)
	if err != nil || len(ranges[0]) != 10 || len(ranges[1]) != 256 || ranges[1][255].Seq != 356 {
		t.Fatalf("ranges: %d and %d events, %v", len(ranges[0]), len(ranges[1]), err)
	}
}
