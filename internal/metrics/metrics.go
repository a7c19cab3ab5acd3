// Package metrics exposes a palm component's counters to Prometheus: the
// gRPC server and client metrics of go-grpc-middleware's Prometheus
// provider, and palm's own, read from the component's parts when scraped.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Meter is what counts messages by step (parts.Meter).
type Meter interface {
	// Steps calls f with the counts of each step.
	Steps(f func(step string, in, out, failed uint64))
}

// Source is where a component's metrics come from; each field may be
// empty when the component has no such thing.
type Source struct {
	// Kind is the component's kind: server, master, hub, pipeline, sink.
	Kind string
	// Meter counts messages in, results out and failures, by step.
	Meter Meter
	// Stats are the gauges and counters of the component's parts.
	Stats []Stat

	// For palm.v1.InfoService: the steps served now, a master's workers,
	// a stage's upstreams (topic@address), and the component's parts.
	Functions func() []string
	Roster    func() []Worker
	Upstreams []string
	Parts     []Part
	// Pipelined: the component sends its results on to the next step
	// rather than back to the client.
	Pipelined bool
}

// Stat is a gauge or a counter, exported as palm_<Name> (a counter as
// palm_<Name>_total) and shown by InfoService under Name.
type Stat struct {
	Name, Help string
	Counter    bool
	Read       func() uint64
}

// Part describes one part of a component, for InfoService.
type Part struct {
	Name, Kind, Route string
	Services          []string
	Notes             map[string]string
}

// Worker is a worker connected to a master or hub.
type Worker struct {
	Name      string
	Functions []string
}

// Counters returns src's counters and gauges by name, for InfoService.
func (s Source) Counters() map[string]uint64 {
	out := map[string]uint64{}
	if s.Meter != nil {
		var in, outs, failed uint64
		s.Meter.Steps(func(_ string, i, o, f uint64) { in, outs, failed = in+i, outs+o, failed+f })
		out["messages_in"], out["messages_out"], out["function_errors"] = in, outs, failed
	}
	for _, st := range s.Stats {
		out[st.Name] = st.Read()
	}
	return out
}

var (
	descIn     = prometheus.NewDesc("palm_messages_in_total", "Messages taken in, by step (server.function).", []string{"step"}, nil)
	descOut    = prometheus.NewDesc("palm_messages_out_total", "Results sent on (to the client or the next step), by step.", []string{"step"}, nil)
	descFailed = prometheus.NewDesc("palm_function_errors_total", "Messages that failed, by the step that failed.", []string{"step"}, nil)
)

// collector reads a Source when scraped.
type collector struct {
	src   Source
	descs []*prometheus.Desc // one a stat
}

func newCollector(src Source) (collector, error) {
	c := collector{src: src}
	seen := map[string]bool{"messages_in": true, "messages_out": true, "function_errors": true}
	for _, st := range src.Stats {
		if seen[st.Name] {
			return c, fmt.Errorf("metrics: two parts report %q; a stat name must be unique in a component", st.Name)
		}
		seen[st.Name] = true
		name := "palm_" + st.Name
		if st.Counter {
			name += "_total"
		}
		c.descs = append(c.descs, prometheus.NewDesc(name, st.Help, nil, nil))
	}
	return c, nil
}

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	if s.Meter != nil {
		s.Meter.Steps(func(step string, in, out, failed uint64) {
			ch <- prometheus.MustNewConstMetric(descIn, prometheus.CounterValue, float64(in), step)
			ch <- prometheus.MustNewConstMetric(descOut, prometheus.CounterValue, float64(out), step)
			ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(failed), step)
		})
	}
	for i, st := range s.Stats {
		kind := prometheus.GaugeValue
		if st.Counter {
			kind = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[i], kind, float64(st.Read()))
	}
}

// Set is the metrics of one component while it serves.
type Set struct {
	reg prometheus.Registerer
	own []prometheus.Collector
}

// ClientMetrics returns the gRPC client metrics of reg's dialers, one
// collector per registry, registered on first use.
func ClientMetrics(reg prometheus.Registerer) *grpcprom.ClientMetrics {
	m := grpcprom.NewClientMetrics()
	if err := reg.Register(m); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) {
			if existing, ok := dup.ExistingCollector.(*grpcprom.ClientMetrics); ok {
				return existing
			}
		}
		return m // counted, but not exposed: reg refused it
	}
	return m
}

// Register registers the metrics of the component named name in reg, all
// labelled component=name and kind=src.Kind: palm's own, read from src,
// and the gRPC server metrics its interceptors count. It fails when reg
// already has a component of that name.
func Register(reg prometheus.Registerer, name string, src Source, server *grpcprom.ServerMetrics) (*Set, error) {
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"component": name, "kind": src.Kind}, reg)
	own, err := newCollector(src)
	if err != nil {
		return nil, err
	}
	s := &Set{reg: wrapped}
	for _, c := range []prometheus.Collector{own, server} {
		if err := wrapped.Register(c); err != nil {
			s.Unregister()
			var dup prometheus.AlreadyRegisteredError
			if errors.As(err, &dup) {
				return nil, fmt.Errorf("metrics: a component named %q is already registered", name)
			}
			return nil, fmt.Errorf("metrics: %w", err)
		}
		s.own = append(s.own, c)
	}
	return s, nil
}

// Unregister removes the component's metrics from the registry, so that a
// component of the same name may serve again.
func (s *Set) Unregister() {
	for _, c := range s.own {
		s.reg.Unregister(c)
	}
	s.own = nil
}

// NewRegistry returns a registry with the Go runtime's and the process's
// collectors, for a component that serves its own /metrics.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Serve serves g's metrics at /metrics on lis until ctx ends.
func Serve(ctx context.Context, lis net.Listener, g prometheus.Gatherer, logger hclog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	logger.Info("serving metrics", "address", "http://"+lis.Addr().String()+"/metrics")
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(stop)
	<-done
	return nil
}

// CacheKeys returns a function that counts the keys of store, when it can
// tell (a store with Len, such as kv.Memory); nil otherwise.
func CacheKeys(store any) func() int {
	l, ok := store.(interface {
		Len(context.Context) (int, error)
	})
	if !ok {
		return nil
	}
	return func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := l.Len(ctx)
		return n
	}
}
