package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tasksync/internal/procstat"
)

// memSample is what is known of a server process's memory at one moment.
// RSS comes from /proc/<pid>/status (VmRSS) when the pid is known, else from
// process_resident_memory_bytes on /metrics; heap and goroutines come from
// /metrics when the server has one (the bare baseline does not).
type memSample struct {
	RSS        int64 `json:"rss_bytes"`
	HeapInuse  int64 `json:"heap_inuse_bytes,omitempty"`
	Goroutines int64 `json:"goroutines,omitempty"`
}

// scrapeMetrics reads the named unlabelled metrics from a Prometheus text
// endpoint.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// sampleMemory reads a target's memory. pid 0 means: RSS from /metrics.
func sampleMemory(ctx context.Context, pid int, metricsURL string) (memSample, error) {
	var s memSample
	var m map[string]float64
	if metricsURL != "" {
		m, _ = scrapeMetrics(ctx, metricsURL, "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_goroutines")
		s.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
		s.Goroutines = int64(m["go_goroutines"])
	}
	if pid > 0 {
		m, err := procstat.Read(pid)
		if err != nil {
			return s, err
		}
		s.RSS = m.RSS
		return s, nil
	}
	if v, ok := m["process_resident_memory_bytes"]; ok {
		s.RSS = int64(v)
		return s, nil
	}
	return s, fmt.Errorf("no --pid and no process_resident_memory_bytes at %s", metricsURL)
}
