package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"tasksync"
)

// The outcome a caller is told is the outcome in the database.
//
// A caller's context governs only the wait before its mutation starts (in
// the group-commit queue, for a connection). Once a transaction that holds
// the mutation has begun, it runs to its end on a context of its own,
// bounded by batchTimeout, and the caller gets what the database did, even
// if the caller's own deadline has passed meanwhile: answering "timed out"
// for a change that then commits is a lie the client cannot undo.
//
// Only a broken connection during COMMIT (or during a single statement in
// autocommit) leaves the outcome unknown to us. With an idempotency key it
// is read back from the key's record (resolveCommit); without one the
// answer is unavailable, saying so.

// resolveTimeout bounds the look-up of a mutation's idempotency record after
// its COMMIT got no answer.
const resolveTimeout = 5 * time.Second

const retryHint = "retry with the same mutation_id (Idempotency-Key on REST)"

// notStarted is the answer to a caller whose context ended before its
// mutation began: nothing was written.
func notStarted(ctx context.Context) error {
	return fmt.Errorf("%w: %w", tasksync.Errorf(tasksync.CodeUnavailable,
		"the change was not applied: the database was too busy to start it in time; %s", retryHint), context.Cause(ctx))
}

// notApplied is the answer when the database could not be reached, or the
// connection broke before COMMIT was sent: nothing was written.
func notApplied(cause error) error {
	return fmt.Errorf("%w: %w", tasksync.Errorf(tasksync.CodeUnavailable,
		"the change was not applied: the database is unavailable; %s", retryHint), cause)
}

// outcomeUnknown is the answer when the connection broke while the
// database may have been committing, and the idempotency record could not
// tell (there is none, or it could not be read).
func outcomeUnknown(keyed bool, cause error) error {
	msg := "the connection to the database broke while the change was being committed: whether it was applied is unknown; " +
		"send mutations with a mutation_id (Idempotency-Key on REST) so that a retry can tell"
	if keyed {
		msg = "the connection to the database broke while the change was being committed: whether it was applied is unknown; " +
			retryHint + ": it is applied at most once and answers with the outcome"
	}
	return fmt.Errorf("%w: %w", tasksync.Errorf(tasksync.CodeUnavailable, "%s", msg), cause)
}

// serverRefused reports whether err is an ERROR the server answered with:
// the statement (or the COMMIT) failed and its transaction is rolled back.
// A FATAL (the backend is terminated, 57P01) is not: it may come after the
// commit record was written, for example while waiting for a synchronous
// standby.
func serverRefused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	sev := pgErr.SeverityUnlocalized
	if sev == "" {
		sev = pgErr.Severity
	}
	return sev == "ERROR"
}

// surelyNotCommitted reports whether a failed COMMIT (or autocommit
// statement) certainly left nothing behind.
func surelyNotCommitted(err error) bool {
	return serverRefused(err) || errors.Is(err, pgx.ErrTxCommitRollback) || pgconn.SafeToRetry(err)
}

// resolveCommit finds out whether a keyed mutation whose COMMIT got no
// answer was committed, from its idempotency record. The probe claims the
// key as the mutation did, in a transaction it always rolls back: if the
// mutation's transaction is still finishing, the claim waits for it on the
// primary key, so the answer cannot change after it is read.
func (s *Service) resolveCommit(j *job, cause error) (Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), resolveTimeout)
	defer cancel()
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Result{}, outcomeUnknown(true, errors.Join(cause, err))
	}
	defer func() { _ = tx.Rollback(ctx) }()
	tag, err := tx.Exec(ctx, `
		INSERT INTO idempotency_keys (user_id, key, fingerprint, result) VALUES ($1, $2, $3, '{}')
		ON CONFLICT (user_id, key) DO NOTHING`, j.userID, j.key, j.fp)
	if err != nil {
		return Result{}, outcomeUnknown(true, errors.Join(cause, err))
	}
	if tag.RowsAffected() == 1 {
		// The key was free: the mutation did not commit.
		return Result{}, notApplied(cause)
	}
	res, err := replay(ctx, tx, j.userID, j.key, j.fp)
	if err != nil {
		if refusal(err) {
			return Result{}, err // the key now holds another request's result
		}
		return Result{}, outcomeUnknown(true, errors.Join(cause, err))
	}
	// Committed: by this very request (or a retry of it racing with it).
	res.Replayed = false
	return res, nil
}
