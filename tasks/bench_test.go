package tasks

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"tasksync/internal/testdb"
)

// BenchmarkServiceCreate is the one write path (a transaction with the
// insert, the change-log trigger's sequence upsert, event row and
// pg_notify) from concurrent writers, each its own user, against a real
// database: the change-log append rate Postgres allows this service. It is
// the in-process counterpart of scenario (a) of docs/BENCHMARKS.md.
func BenchmarkServiceCreate(b *testing.B) {
	for _, writers := range []int{1, 4, 16} {
		for _, keyed := range []bool{false, true} {
			name := fmt.Sprintf("writers=%d", writers)
			if keyed {
				name += "/mutation_id"
			}
			b.Run(name, func(b *testing.B) {
				db := testdb.New(b)
				svc := NewService(db.Pool)
				title := "bench task"
				var users, keys atomic.Int64
				// Open the pool's connections before timing.
				for i := 0; i < 8; i++ {
					if _, err := svc.Create(context.Background(), "bench-warm", Fields{Title: &title}, MutationOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					user := "bench-u" + strconv.FormatInt(users.Add(1), 10)
					ctx := context.Background()
					for pb.Next() {
						var opts MutationOptions
						if keyed {
							opts.IdempotencyKey = "k" + strconv.FormatInt(keys.Add(1), 10)
						}
						if _, err := svc.Create(ctx, user, Fields{Title: &title}, opts); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			})
		}
	}
}
