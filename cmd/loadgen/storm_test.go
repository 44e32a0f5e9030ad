package main

import (
	"testing"
	"time"
)

// Postgres rates come from pg_stat_database samples: before the kill
// (from the start of the writes), during the storm (the sample just before
// the kill to the end), and the busiest second of the storm.
func TestStormPGLoad(t *testing.T) {
	s := func(at float64, xact, tup, backends int64) pgSample {
		return pgSample{at: time.Duration(at * float64(time.Second)), xact: xact, tupRet: tup, backends: backends}
	}
	samples := []pgSample{
		s(0, 0, 0, 10), s(1, 100, 1000, 10), s(2, 200, 2000, 12), // writes: 100 xact/s
		s(2.75, 275, 2750, 12), // the last sample before the kill at 3 s
		s(3, 300, 3000, 30), s(4, 1300, 5000, 40), s(5, 1800, 6000, 35), s(6, 1900, 7000, 20),
	}
	got := pgLoad(samples, 0, 3*time.Second, 6*time.Second)
	if got.XactPerSBefore != 100 || got.TupRetPerSBefore != 1000 {
		t.Errorf("before: %v xact/s, %v rows/s; want 100, 1000", got.XactPerSBefore, got.TupRetPerSBefore)
	}
	// From 2.75 s (275) to 6 s (1900): 1625 in 3.25 s.
	if got.XactStorm != 1625 || got.XactPerSStorm != 500 {
		t.Errorf("storm: %d xact, %v/s; want 1625, 500", got.XactStorm, got.XactPerSStorm)
	}
	if got.XactPerSPeak != 1000 || got.BackendsPeak != 40 {
		t.Errorf("peak %v xact/s, %d backends; want 1000, 40", got.XactPerSPeak, got.BackendsPeak)
	}
}
