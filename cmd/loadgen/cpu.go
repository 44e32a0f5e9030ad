package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"tasksync/internal/procstat"
)

// The CPU split of a run: on a machine whose cores the servers, Postgres,
// Redis and the load generator share, deliveries/s is bounded by the CPU
// all of them use per delivery. Reading each one's CPU time over the window
// says where a delivery's cost goes, and compares two servers' own work
// without the noise of a shared machine.

// cpuSample is the CPU time used so far by the run's processes (-1: not
// known).
type cpuSample struct {
	servers  []time.Duration // one per --pid
	postgres time.Duration   // every process named postgres
	redis    time.Duration   // every process named redis-server
	self     time.Duration   // this load generator
}

func (g *loadgen) sampleCPU() cpuSample {
	s := cpuSample{postgres: -1, redis: -1, self: -1}
	for _, pid := range g.cfg.PIDs {
		d, err := procstat.CPU(pid)
		if err != nil {
			d = -1
		}
		s.servers = append(s.servers, d)
	}
	if d, _, err := procstat.CPUOf("postgres"); err == nil {
		s.postgres = d
	}
	if d, _, err := procstat.CPUOf("redis-server"); err == nil {
		s.redis = d
	}
	if d, err := procstat.CPU(os.Getpid()); err == nil {
		s.self = d
	}
	return s
}

// cpuReport is the CPU time of a run's window, in microseconds per
// delivered event (every Postgres and Redis process on the machine counts:
// run nothing else beside a benchmark).
type cpuReport struct {
	Delivered int64 `json:"delivered"`
	// ServersUs: the --pid processes together.
	ServersUs  float64 `json:"servers_us_per_delivery"`
	PostgresUs float64 `json:"postgres_us_per_delivery"`
	RedisUs    float64 `json:"redis_us_per_delivery"`
	LoadgenUs  float64 `json:"loadgen_us_per_delivery"`
	// TotalUs adds the four: what one delivery costs the machine.
	TotalUs float64 `json:"total_us_per_delivery"`
}

// cpuReportOf compares two samples; nil when nothing was delivered or no
// server pid is known.
func cpuReportOf(from, to cpuSample, delivered int64) *cpuReport {
	if delivered == 0 || len(from.servers) == 0 || len(from.servers) != len(to.servers) {
		return nil
	}
	per := func(a, b time.Duration) float64 {
		if a < 0 || b < a {
			return -1
		}
		return round3(float64((b - a).Microseconds()) / float64(delivered))
	}
	r := &cpuReport{Delivered: delivered}
	var a, b time.Duration
	for i := range from.servers {
		if from.servers[i] < 0 || to.servers[i] < 0 {
			return nil
		}
		a, b = a+from.servers[i], b+to.servers[i]
	}
	r.ServersUs = per(a, b)
	r.PostgresUs, r.RedisUs, r.LoadgenUs = per(from.postgres, to.postgres), per(from.redis, to.redis), per(from.self, to.self)
	for _, v := range []float64{r.ServersUs, r.PostgresUs, r.RedisUs, r.LoadgenUs} {
		if v > 0 {
			r.TotalUs += v
		}
	}
	r.TotalUs = round3(r.TotalUs)
	return r
}

func (r *cpuReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "per delivery: server(s) %.2f us", r.ServersUs)
	for _, p := range []struct {
		name string
		v    float64
	}{{"Postgres", r.PostgresUs}, {"Redis", r.RedisUs}, {"loadgen", r.LoadgenUs}} {
		if p.v >= 0 {
			fmt.Fprintf(&b, ", %s %.2f us", p.name, p.v)
		}
	}
	fmt.Fprintf(&b, "; total %.2f us (10 ms resolution, over %d deliveries)", r.TotalUs, r.Delivered)
	return b.String()
}
