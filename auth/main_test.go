package auth_test

import (
	"testing"

	"tasksync/internal/testdb"
)

// The revocation tests run on real Postgres databases (internal/testdb).
func TestMain(m *testing.M) { testdb.Main(m) }
