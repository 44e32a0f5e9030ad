package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportPeerLatencyKeys: each Centrifugo variant of the cross-instance
// row reads its own files (p-lat-cfredis must not take in
// p-lat-cfredisapi-r1.json, nor p-lat-cfpg the cfpgapi files), and the
// table shows every variant beside the same tasksync figure.
func TestReportPeerLatencyKeys(t *testing.T) {
	dir := writeRuns(t, `{"fanout":{"cross_instance":{"p50_ms":%s,"p99_ms":9}}}`, map[string]string{
		"p-lat-tasksync-r1": "1.5", "p-lat-tasksync-r2": "1.7",
		"p-lat-cfredis-r1": "0.6", "p-lat-cfredisapi-r1": "0.9",
		"p-lat-cfpg-r1": "2.1", "p-lat-cfpgapi-r1": "2.4", "p-lat-cfpgapi-r2": "2.6",
	})
	wantMedians(t, dir, "fanout.cross_instance.p50_ms",
		map[string]float64{"p-lat-tasksync": 1.6, "p-lat-cfredis": 0.6, "p-lat-cfredisapi": 0.9, "p-lat-cfpg": 2.1, "p-lat-cfpgapi": 2.5})
	var out strings.Builder
	if err := runReport([]string{"--dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server API publish (HTTP keep-alive)", "Postgres broker (a commit per publication", "Postgres broker, server API publish"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestReportPeerFixedRate: the fixed-rate broadcast (p-fix-*) and the
// full-speed one (p-bc-*) read their own files, and the table compares
// CPU per delivery at the fixed rate beside Centrifugo's.
func TestReportPeerFixedRate(t *testing.T) {
	dir := writeRuns(t, `{"events":{"delivered_per_second":30000},"cpu":{"servers_us_per_delivery":%s,"loadgen_us_per_delivery":17,"total_us_per_delivery":40}}`,
		map[string]string{
			"p-bc-tasksync-r1": "14", "p-bc-cfmemory-r1": "9.5",
			"p-fix-tasksync-r1": "16", "p-fix-tasksync-r2": "18", "p-fix-cfmemory-r1": "15.5",
		})
	wantMedians(t, dir, "cpu.servers_us_per_delivery", map[string]float64{"p-bc-tasksync": 14, "p-fix-tasksync": 17, "p-fix-cfmemory": 15.5})
	var out strings.Builder
	if err := runReport([]string{"--dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "server CPU per delivery at that rate") {
			row = l
		}
	}
	if !strings.Contains(row, "| 17.0 (16.0..18.0) us | 15.5 us (Centrifugo, memory engine) |") || !strings.Contains(row, "1.10x") || !strings.HasSuffix(row, "| no |") {
		t.Errorf("fixed-rate CPU row: %q\n%s", row, out.String())
	}
}

// writeRuns writes one run file NAME.json per entry of values into a new
// directory: doc with the value in place of its %s.
func writeRuns(t *testing.T, doc string, values map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range values {
		if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(fmt.Sprintf(doc, v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// wantMedians checks the median the report reads at path for each run key.
func wantMedians(t *testing.T, dir, path string, want map[string]float64) {
	t.Helper()
	for key, w := range want {
		if f := get(dir, metric{key, path}); f == nil || f.Median != w {
			t.Errorf("%s: %v, want median %v", key, f, w)
		}
	}
}
