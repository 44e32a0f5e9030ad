package realtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ChangeLog reads the per-user change log (table task_events, written by
// triggers in the writers' transactions).
type ChangeLog struct {
	db *pgxpool.Pool
}

// NewChangeLog returns a ChangeLog over db.
func NewChangeLog(db *pgxpool.Pool) *ChangeLog { return &ChangeLog{db: db} }

// CurrentSeq returns the last sequence number handed out to userID (0 if
// the user never changed anything).
func (l *ChangeLog) CurrentSeq(ctx context.Context, userID string) (int64, error) {
	var seq int64
	err := l.db.QueryRow(ctx, `SELECT seq FROM user_seqs WHERE user_id = $1`, userID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read current seq: %w", err)
	}
	return seq, nil
}

// readSQL reads one user's events with $2 < seq <= $3, at most $4 of them.
//
// Seqs have no gaps, so the range is cut to $4 seqs in the WHERE clause as
// well as by LIMIT: whatever plan Postgres picks, a page reads at most $4
// rows. With LIMIT alone, a plan chosen on stale statistics (a bitmap
// heap scan and a sort, seen on a table whose user had grown since its
// last ANALYZE) read the whole rest of the range for every page, so a
// socket far behind paid for its gap once per page.
const readSQL = `
		SELECT user_id, seq, op, task_id, task, created_at FROM task_events
		WHERE user_id = $1 AND seq > $2 AND seq <= least($3, $2 + $4)
		ORDER BY seq LIMIT $4`

// Read returns userID's events with after < seq <= upTo, in order, at most
// limit of them.
func (l *ChangeLog) Read(ctx context.Context, userID string, after, upTo int64, limit int) ([]*Event, error) {
	rows, err := l.db.Query(ctx, readSQL, userID, after, upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("read change log: %w", err)
	}
	return collectEvents(rows)
}

// ReadAfter returns, for each user in cursors, up to perUser events with
// seq greater than the user's cursor: one round trip for a whole batch of
// notifications. Events come grouped by user, in seq order within a user.
func (l *ChangeLog) ReadAfter(ctx context.Context, cursors map[string]int64, perUser int) ([]*Event, error) {
	users := make([]string, 0, len(cursors))
	afters := make([]int64, 0, len(cursors))
	for u, c := range cursors {
		users = append(users, u)
		afters = append(afters, c)
	}
	rows, err := l.db.Query(ctx, `
		SELECT c.user_id, e.seq, e.op, e.task_id, e.task, e.created_at
		FROM unnest($1::text[], $2::bigint[]) AS c(user_id, after)
		CROSS JOIN LATERAL (
			SELECT seq, op, task_id, task, created_at FROM task_events e
			WHERE e.user_id = c.user_id AND e.seq > c.after
			ORDER BY seq LIMIT $3
		) e
		ORDER BY c.user_id, e.seq`, users, afters, perUser)
	if err != nil {
		return nil, fmt.Errorf("read change log batch: %w", err)
	}
	return collectEvents(rows)
}

// CurrentSeqs returns the current seq of each of users (0 for a user who
// never changed anything): one round trip for many new sockets.
func (l *ChangeLog) CurrentSeqs(ctx context.Context, users []string) (map[string]int64, error) {
	rows, err := l.db.Query(ctx, `SELECT user_id, seq FROM user_seqs WHERE user_id = ANY($1::text[])`, users)
	if err != nil {
		return nil, fmt.Errorf("read current seqs: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(users))
	for rows.Next() {
		var u string
		var seq int64
		if err := rows.Scan(&u, &seq); err != nil {
			return nil, fmt.Errorf("scan current seq: %w", err)
		}
		out[u] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read current seqs: %w", err)
	}
	return out, nil
}

// logRange is one catch-up read: a user's events with After < seq <= UpTo.
type logRange struct {
	User        string
	After, UpTo int64
}

// ReadRanges reads several ranges, of any users, in one round trip: for
// range i, out[i] holds up to limit of its events in seq order (each range
// cut to limit seqs, as in readSQL).
func (l *ChangeLog) ReadRanges(ctx context.Context, ranges []logRange, limit int) ([][]*Event, error) {
	idx := make([]int32, len(ranges))
	users := make([]string, len(ranges))
	afters := make([]int64, len(ranges))
	upTos := make([]int64, len(ranges))
	for i, r := range ranges {
		idx[i], users[i], afters[i], upTos[i] = int32(i), r.User, r.After, r.UpTo
	}
	rows, err := l.db.Query(ctx, `
		SELECT c.i, c.user_id, e.seq, e.op, e.task_id, e.task, e.created_at
		FROM unnest($1::int[], $2::text[], $3::bigint[], $4::bigint[]) AS c(i, user_id, after, up_to)
		CROSS JOIN LATERAL (
			SELECT seq, op, task_id, task, created_at FROM task_events e
			WHERE e.user_id = c.user_id AND e.seq > c.after AND e.seq <= least(c.up_to, c.after + $5)
			ORDER BY seq LIMIT $5
		) e
		ORDER BY c.i, e.seq`, idx, users, afters, upTos, limit)
	if err != nil {
		return nil, fmt.Errorf("read change log ranges: %w", err)
	}
	out := make([][]*Event, len(ranges))
	for rows.Next() {
		var i int32
		e := &Event{}
		var task []byte
		if err := rows.Scan(&i, &e.UserID, &e.Seq, &e.Op, &e.TaskID, &task, &e.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan event: %w", err)
		}
		if err := e.prepare(task); err != nil {
			rows.Close()
			return nil, err
		}
		if i < 0 || int(i) >= len(out) {
			rows.Close()
			return nil, fmt.Errorf("read change log ranges: range %d of %d", i, len(out))
		}
		out[i] = append(out[i], e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// prepare sets the task JSON of a scanned event and encodes its frame.
func (e *Event) prepare(task []byte) error {
	if task != nil {
		e.Task = task
	}
	frame, err := encodeEvent(e)
	if err != nil {
		return err
	}
	e.frame = frame
	return nil
}

func collectEvents(rows pgx.Rows) ([]*Event, error) {
	var out []*Event
	for rows.Next() {
		e := &Event{}
		var task []byte
		if err := rows.Scan(&e.UserID, &e.Seq, &e.Op, &e.TaskID, &task, &e.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan event: %w", err)
		}
		if err := e.prepare(task); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// Prune deletes events older than maxAge, in batches so that no single
// statement holds locks for long. Clients resuming from a pruned seq get a
// snapshot instead.
func (l *ChangeLog) Prune(ctx context.Context, maxAge time.Duration) (int64, error) {
	var total int64
	for {
		tag, err := l.db.Exec(ctx, `
			DELETE FROM task_events WHERE ctid IN (
				SELECT ctid FROM task_events WHERE created_at < now() - make_interval(secs => $1) LIMIT 5000)`,
			maxAge.Seconds())
		if err != nil {
			return total, fmt.Errorf("prune change log: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 5000 {
			return total, nil
		}
	}
}
