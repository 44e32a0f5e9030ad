package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a log-linear latency histogram in the manner of HDR histograms:
// values (nanoseconds) below 64 have a bucket each, and every power of two
// above is split into 64 linear buckets, so a reported quantile is within
// 1/64 (1.6%) of the true value. Record is lock-free and safe for
// concurrent use; quantiles are read after the run.
type hist struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64
	max    atomic.Int64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histMaxExp  = 40 // 2^41 ns is about 36 minutes: anything longer is clamped
	histBuckets = histSub + (histMaxExp-histSubBits+1)*histSub
)

func histIndex(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	k := bits.Len64(uint64(v)) - 1 // v is in [2^k, 2^(k+1))
	if k > histMaxExp {
		return histBuckets - 1
	}
	sub := int(v>>(k-histSubBits)) - histSub
	return histSub + (k-histSubBits)*histSub + sub
}

// histLow returns the smallest value of bucket i.
func histLow(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	k := (i-histSub)/histSub + histSubBits
	sub := (i - histSub) % histSub
	return int64(histSub+sub) << (k - histSubBits)
}

func (h *hist) record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// quantile returns the value at quantile q (0..1): the midpoint of the
// bucket holding the q*n-th sample.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo := histLow(i)
			hi := lo + 1
			if i+1 < histBuckets {
				hi = histLow(i + 1)
			}
			mid := lo + (hi-lo)/2
			if m := h.max.Load(); mid > m {
				mid = m
			}
			return time.Duration(mid)
		}
	}
	return time.Duration(h.max.Load())
}

// latencySummary is how a histogram appears in the JSON report.
type latencySummary struct {
	N      int64   `json:"n"`
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (h *hist) summary() latencySummary {
	n := h.n.Load()
	if n == 0 {
		return latencySummary{}
	}
	return latencySummary{
		N: n, P50ms: ms(h.quantile(.50)), P90ms: ms(h.quantile(.90)), P99ms: ms(h.quantile(.99)),
		P999ms: ms(h.quantile(.999)), MaxMS: ms(time.Duration(h.max.Load())),
		MeanMS: ms(time.Duration(h.sum.Load() / n)),
	}
}
