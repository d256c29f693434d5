package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	claims   prometheus.Histogram
}

// runCounter is a store that counts flow runs by state (for the
// reeve_flow_runs gauge).
type runCounter interface {
	CountFlowRuns(ctx context.Context) (map[state.Kind]int64, error)
}

func newMetrics(reg *prometheus.Registry, st store.Store) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reeve_http_requests_total",
			Help: "API requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reeve_http_request_duration_seconds",
			Help:    "API request latency by route and method (long-polls and streams included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 60},
		}, []string{"route", "method"}),
		claims: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reeve_claim_latency_seconds",
			Help:    "Time from a flow run being due (created or scheduled, whichever is later) to an agent claiming it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.claims)
	if rc, ok := st.(runCounter); ok {
		reg.MustRegister(&runsCollector{rc: rc, desc: prometheus.NewDesc("reeve_flow_runs", "Flow runs by state.", []string{"state"}, nil)})
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		_ = err // a shared registry may have it already
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		_ = err
	}
	return m
}

func (m *metrics) observe(rt api.Route, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(rt.Path, rt.Method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(rt.Path, rt.Method).Observe(d.Seconds())
}

func (m *metrics) handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// runsCollector reads the run counts from the store at each scrape.
type runsCollector struct {
	rc   runCounter
	desc *prometheus.Desc
}

func (c *runsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *runsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.rc.CountFlowRuns(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, k := range state.Kinds() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[k]), k.String())
	}
}
