package main

import (
	"testing"
	"time"
)

func TestCPUReportPerDelivery(t *testing.T) {
	from := cpuSample{servers: []time.Duration{time.Second, 2 * time.Second}, postgres: 0, redis: -1, self: time.Second}
	to := cpuSample{servers: []time.Duration{2 * time.Second, 4 * time.Second}, postgres: time.Second, redis: -1, self: 3 * time.Second}
	r := cpuReportOf(from, to, 100_000)
	if r == nil {
		t.Fatal("no report")
	}
	// servers: 3 s over 100,000 deliveries = 30 us; Postgres 10 us;
	// loadgen 20 us; Redis unknown (-1) and left out of the total.
	if r.ServersUs != 30 || r.PostgresUs != 10 || r.LoadgenUs != 20 || r.RedisUs != -1 || r.TotalUs != 60 {
		t.Fatalf("report %+v", r)
	}
	if cpuReportOf(from, to, 0) != nil {
		t.Fatal("a report without deliveries")
	}
	lost := to
	lost.servers = []time.Duration{-1, 4 * time.Second}
	if cpuReportOf(from, lost, 100_000) != nil {
		t.Fatal("a report with a server's CPU unknown")
	}
}
