// Package testdb gives each test its own migrated Postgres database.
//
// The first call in a test binary creates a template database and migrates
// it; every [New] clones the template (CREATE DATABASE ... TEMPLATE, a file
// copy, much faster than migrating) and drops the clone when the test ends.
// [Main] drops the template when the package's tests are done, so runs never
// see each other's data and leave nothing behind.
//
// The server is reached through TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), a role that
// may create databases. A missing server fails the test: it is never skipped.
package testdb

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync/internal/reqlog"
	"tasksync/migrations"
)

// DefaultAdminURL is used when TEST_DATABASE_URL is not set.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns the URL of the server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// DB is one test's database.
type DB struct {
	Name string
	URL  string // connection URL of this database
	Pool *pgxpool.Pool
}

// Main runs the package's tests and then drops the template database.
// Call it from TestMain: func TestMain(m *testing.M) { testdb.Main(m) }.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns m.Run's code, for a TestMain
// that has more to check after the tests (internal/contract's reports).
func Run(m *testing.M) int {
	code := m.Run()
	if templateName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := dropDatabase(ctx, templateName); err != nil {
			fmt.Fprintf(os.Stderr, "testdb: drop template: %v\n", err)
		}
		cancel()
	}
	return code
}

// New returns a fresh migrated database for t, dropped when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	templateOnce.Do(func() { templateName, templateErr = makeTemplate(ctx) })
	if templateErr != nil {
		t.Fatalf("testdb: template database: %v (is Postgres running? TEST_DATABASE_URL=%q)", templateErr, AdminURL())
	}
	name := "tasksync_t_" + lowerID()
	if err := adminExec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, templateName)); err != nil {
		t.Fatalf("testdb: create database: %v", err)
	}
	dbURL, err := withDatabase(AdminURL(), name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, name); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return &DB{Name: name, URL: dbURL, Pool: pool}
}

func makeTemplate(ctx context.Context) (string, error) {
	name := "tasksync_tmpl_" + lowerID()
	if err := adminExec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	dbURL, err := withDatabase(AdminURL(), name)
	if err != nil {
		return name, err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return name, err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool, nil); err != nil {
		return name, err
	}
	return name, nil
}

func dropDatabase(ctx context.Context, name string) error {
	return adminExec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
}

func adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(rawURL, db string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + db
	return u.String(), nil
}

// lowerID is a database-name-safe random id.
func lowerID() string {
	b := []byte(reqlog.NewID())
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
