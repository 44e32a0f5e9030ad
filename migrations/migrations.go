// Package migrations holds the SQL schema of tasksync, embedded in the binary,
// and applies it with goose. One migration is Go (00006_reminders.go): it
// runs River's own migrator for the job queue's tables.
//
// Migrations run under a Postgres session advisory lock, so several instances
// starting at once apply each migration exactly once; the others wait and
// then find nothing to do.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

func provider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithSessionLocker(locker),
		goose.WithGoMigrations(remindersMigration()),
		// Migration numbers are reserved by parallel branches and may land
		// out of order (00007 before 00006); none depends on a migration
		// numbered after it, so a database that has a higher one applies a
		// lower one it lacks instead of refusing to start.
		goose.WithAllowOutofOrder(true),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Up applies every pending migration and returns the schema version reached.
func Up(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (int64, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := provider(db, logger)
	if err != nil {
		return 0, err
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Pending reports whether the database lacks migrations that this binary
// has. /readyz uses it: an instance whose schema is behind is not ready.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := provider(db, nil)
	if err != nil {
		return false, err
	}
	// HasPending, not current < target: a lower migration that landed
	// after a higher one was applied is pending too.
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	return pending, nil
}

// DownTo rolls migrations back until the schema is at version (tests of
// the down migrations).
func DownTo(ctx context.Context, pool *pgxpool.Pool, version int64) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := provider(db, nil)
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("roll back migrations: %w", err)
	}
	return nil
}
