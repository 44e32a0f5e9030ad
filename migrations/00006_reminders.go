package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// Migration 00006: the job queue that fires reminders, and the reminders
// they fire (issue 13).
//
// River's tables (river_job, river_leader, river_queue, river_migration,
// ...) are created by River's own migrator, rivermigrate, called here
// under goose's advisory lock, so that one schema history and one advisory lock
// cover everything: `server migrate`, AUTO_MIGRATE at start and the tests'
// template databases (internal/testdb) all get River by running goose, and
// /readyz's "schema behind" check sees it. River's version is pinned
// (RiverSchemaVersion): a River upgrade that brings new River migrations
// adds a goose migration that migrates River to the new version, as it
// would for any schema change of ours. Copying River's SQL in here instead
// would freeze a copy that River's migrator no longer knows about
// (river_migration would say nothing is applied).
//
// reminders records each reminder that fired: the River job inserts its
// row and NOTIFYs tasksync_reminders ("<reminder id>:<user id>") in one
// transaction with the job's completion, so a reminder is recorded once
// and announced once. delivered_at is set once a session of the user has
// been sent it; a reminder still undelivered when the user next connects
// is sent then, as pending.
// RiverSchemaVersion is the River schema version migration 00006 applies.
const RiverSchemaVersion = 8

const remindersUp = `
CREATE TABLE IF NOT EXISTS reminders (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      text        NOT NULL,
    -- A deleted task takes its reminders with it: nothing is left to show.
    task_id      bigint      NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    -- The time the reminder was set for (tasks.remind_at when it fired).
    remind_at    timestamptz NOT NULL,
    fired_at     timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    -- The River job that fired it: one job fires at most one reminder.
    job_id       bigint      UNIQUE
);
-- What a connecting session is sent: the user's undelivered reminders.
CREATE INDEX IF NOT EXISTS reminders_undelivered_idx ON reminders (user_id, id) WHERE delivered_at IS NULL;
-- The foreign key's cascade, and pruning.
CREATE INDEX IF NOT EXISTS reminders_task_idx ON reminders (task_id);
CREATE INDEX IF NOT EXISTS reminders_fired_idx ON reminders (fired_at);
`

const remindersDown = `DROP TABLE IF EXISTS reminders;`

func riverMigrator(db *sql.DB) (*rivermigrate.Migrator[*sql.Tx], error) {
	m, err := rivermigrate.New(riverdatabasesql.New(db), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	return m, nil
}

// remindersMigration runs outside a goose transaction: River's migrator runs
// each of its versions in a transaction of its own (one of them adds an enum
// value, which Postgres cannot use in the transaction that added it). Every
// step is idempotent (River skips the versions it has, the table is created
// if not there), so a migration cut short is simply run again; goose records
// version 6 only once all of it succeeded, and its advisory lock is held
// throughout.
func remindersMigration() *goose.Migration {
	up := func(ctx context.Context, db *sql.DB) error {
		m, err := riverMigrator(db)
		if err != nil {
			return err
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{TargetVersion: RiverSchemaVersion}); err != nil {
			return fmt.Errorf("river schema: %w", err)
		}
		if _, err := db.ExecContext(ctx, remindersUp); err != nil {
			return fmt.Errorf("reminders table: %w", err)
		}
		return nil
	}
	down := func(ctx context.Context, db *sql.DB) error {
		if _, err := db.ExecContext(ctx, remindersDown); err != nil {
			return fmt.Errorf("reminders table: %w", err)
		}
		m, err := riverMigrator(db)
		if err != nil {
			return err
		}
		// -1: every River migration down, River's tables gone.
		if _, err := m.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: -1}); err != nil {
			return fmt.Errorf("river schema: %w", err)
		}
		return nil
	}
	return goose.NewGoMigration(6, &goose.GoFunc{RunDB: up}, &goose.GoFunc{RunDB: down})
}
