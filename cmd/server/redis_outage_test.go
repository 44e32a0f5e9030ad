package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
)

// privateRedis runs a redis-server of its own for tests that stop it.
type privateRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T, port int) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed for this test (make test installs it): %v", err)
	}
	r := &privateRedis{t: t, port: port, dir: t.TempDir()}
	if r.port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	r.cmd = exec.Command(bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	eventually(t, "private redis answers", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	return r
}

func (r *privateRedis) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }
func (r *privateRedis) url() string  { return "redis://" + r.addr() + "/0" }

func (r *privateRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Kill)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// TestRedisOutage: with Redis down task sync carries on (it rides on
// Postgres); when Redis is back, subscriptions and presence recover.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	rds := startPrivateRedis(t, 0)
	overrides := map[string]string{"REDIS_URL": rds.url(), "PRESENCE_TTL": "3s"}
	a := env.start(env.config(overrides))
	b := env.start(env.config(overrides))

	onA := dialWith(t, a.WS+"?device=a", wsOpts(t, "nina"))
	onB := dialWith(t, b.WS+"?device=b", wsOpts(t, "nina"))
	if p := onA.next("presence"); p["online"] == nil {
		t.Fatalf("presence: %v", p)
	}
	for {
		if p := onA.next("presence"); p["online"] == float64(2) {
			break
		}
	}

	rds.stop()
	// Task sync does not notice.
	onA.request(map[string]any{"type": "task.create", "task": map[string]any{"title": "while redis is down"}})
	for _, c := range []*wsClient{onA, onB} {
		if ev := c.events(1)[0]; ev.task()["title"] != "while redis is down" {
			t.Fatalf("event: %v", ev)
		}
	}
	if r := onA.request(map[string]any{"type": "presence.list"}); r["code"] != "unavailable" {
		t.Fatalf("presence while down: %v", r)
	}

	// Redis comes back empty (no persistence): presence is rebuilt by the
	// instances and announced; a new device on B is seen from A.
	startPrivateRedis(t, rds.port)
	eventually(t, "presence rebuilt", func() bool {
		r := onA.request(map[string]any{"type": "presence.list"})
		return r["online"] == float64(2)
	})
	third := dialWith(t, b.WS+"?device=c", wsOpts(t, "nina"))
	for {
		p := onA.next("presence")
		if p["event"] == "join" && p["session_id"] == third.hello["session_id"] {
			if p["online"] != float64(3) {
				t.Fatalf("join after recovery: %v", p)
			}
			break
		}
	}
	if a.metric(t, "tasksync_redis_reconnects_total") < 1 {
		t.Fatal("the recovery was not counted")
	}
}
