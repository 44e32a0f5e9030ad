package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistIndexIsMonotonicAndBounded(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<22; v += 1 + v/97 {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index of %d is %d, below the previous %d", v, i, prev)
		}
		if lo := histLow(i); lo > v {
			t.Fatalf("bucket %d starts at %d, above its value %d", i, lo, v)
		}
		if i+1 < histBuckets && histLow(i+1) <= v {
			t.Fatalf("value %d belongs past bucket %d", v, i)
		}
		prev = i
	}
	if i := histIndex(1 << 62); i != histBuckets-1 {
		t.Fatalf("huge value in bucket %d, want the last", i)
	}
}

func TestHistQuantilesWithinPrecision(t *testing.T) {
	var h hist
	samples := make([]int64, 20000)
	for i := range samples {
		samples[i] = int64(50*time.Microsecond) + rand.Int64N(int64(5*time.Millisecond))
		h.record(time.Duration(samples[i]))
	}
	slices.Sort(samples)
	for _, q := range []float64{.5, .9, .99} {
		want := float64(samples[int(q*float64(len(samples)))-1])
		got := float64(h.quantile(q))
		if d := (got - want) / want; d > 1.0/32 || d < -1.0/32 {
			t.Errorf("q%.2f: %v, want %v (off by %.1f%%)", q, time.Duration(got), time.Duration(want), d*100)
		}
	}
}
