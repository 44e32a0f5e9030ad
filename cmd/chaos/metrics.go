package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsClient reads /metrics without keeping connections alive: an idle
// keep-alive connection is a goroutine in the server, and the slow-bodies
// scenario counts the server's goroutines.
var metricsClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// metrics reads the named metrics from an instance's /metrics (served on
// the API port: the run sets no METRICS_ADDR). A metric with labels is the
// sum of its series; a name the server does not expose is left out of the
// map (an older server binary).
func (in *instance) metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.httpURL()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := metricsClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the metrics of %s: %w", in.name, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the metrics of %s: %s", in.name, res.Status)
	}
	return parseMetrics(res.Body, names...)
}

// parseMetrics picks the named metrics out of the Prometheus text format.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[string]float64{}
	for _, name := range names {
		mf, ok := families[name]
		if !ok {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += metricValue(m)
		}
		out[name] = sum
	}
	return out, nil
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}
