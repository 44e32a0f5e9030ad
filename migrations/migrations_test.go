package migrations_test

import (
	"context"
	"testing"
	"time"

	"tasksync/internal/testdb"
	"tasksync/migrations"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// River's schema comes with ours: a migrated database has River's tables at
// the pinned version, and migration 00006 goes down and up again cleanly.
func TestRiverSchemaWithGoose(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	check := func(wantRiver bool) {
		t.Helper()
		var river, reminders bool
		if err := db.Pool.QueryRow(ctx, `SELECT to_regclass('river_job') IS NOT NULL, to_regclass('reminders') IS NOT NULL`).Scan(&river, &reminders); err != nil {
			t.Fatal(err)
		}
		if river != wantRiver || reminders != wantRiver {
			t.Fatalf("river_job exists %v, reminders exists %v; want %v", river, reminders, wantRiver)
		}
		if wantRiver {
			var v int
			if err := db.Pool.QueryRow(ctx, `SELECT max(version) FROM river_migration WHERE line = 'main'`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != migrations.RiverSchemaVersion {
				t.Fatalf("river schema at %d, want %d", v, migrations.RiverSchemaVersion)
			}
		}
	}
	check(true)
	if err := migrations.DownTo(ctx, db.Pool, 5); err != nil {
		t.Fatal(err)
	}
	check(false)
	if _, err := migrations.Up(ctx, db.Pool, nil); err != nil {
		t.Fatal(err)
	}
	check(true)
	pending, err := migrations.Pending(ctx, db.Pool)
	if err != nil || pending {
		t.Fatalf("pending %v, %v after Up", pending, err)
	}

	// A database that got a higher migration before 00006 landed (numbers
	// are reserved by parallel branches) is behind, and Up applies 00006.
	if _, err := db.Pool.Exec(ctx, `DROP TABLE reminders; DELETE FROM goose_db_version WHERE version_id = 6`); err != nil {
		t.Fatal(err)
	}
	if pending, err := migrations.Pending(ctx, db.Pool); err != nil || !pending {
		t.Fatalf("pending %v, %v without 00006", pending, err)
	}
	if _, err := migrations.Up(ctx, db.Pool, nil); err != nil {
		t.Fatal(err)
	}
	check(true)
}
