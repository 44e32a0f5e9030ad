package tasks

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SnapshotPages reads all tasks of userID, ordered by id, in pages of at
// most pageSize, all as of one instant, and returns the user's change
// sequence number at that instant: applying later events (seq > the
// returned seq) to the pages gives the current state. fn receives that
// seq with every page, and is called at least once (with an empty page for
// a user without tasks). The next page is read only when fn returns, so a
// caller that sends pages to a slow client reads at the client's pace and
// never holds more than a page; an error from fn stops the read and is
// returned as is.
//
// The pages come from one read-only REPEATABLE READ transaction, which
// stays open (holding one pool connection) until the last page: callers
// bound how many run at once and for how long (ctx).
func (s *Service) SnapshotPages(ctx context.Context, userID string, pageSize int, fn func(seq int64, page []Task) error) (int64, error) {
	if pageSize <= 0 {
		pageSize = 500
	}
	var seq int64
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM user_seqs WHERE user_id = $1`, userID).Scan(&seq); err != nil {
			return fmt.Errorf("read sequence: %w", err)
		}
		after := int64(0)
		for {
			rows, err := tx.Query(ctx, `SELECT `+columns+` FROM tasks WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
				userID, after, pageSize)
			if err != nil {
				return fmt.Errorf("read tasks: %w", err)
			}
			page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Task, error) { return scanTask(r) })
			if err != nil {
				return fmt.Errorf("read tasks: %w", err)
			}
			if err := fn(seq, page); err != nil {
				return err
			}
			if len(page) < pageSize {
				return nil
			}
			after = page[len(page)-1].ID
		}
	})
	if err != nil {
		return 0, err
	}
	return seq, nil
}
