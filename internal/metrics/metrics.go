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

// Source is where a component's metrics come from; each field may be nil
// when the component has no such thing.
type Source struct {
	// Kind is the component's kind: server, master, hub, pipeline, sink.
	Kind string
	// Meter counts messages in, results out and failures, by step.
	Meter Meter
	// Workers, Queued and InFlight read a master's dispatcher.
	Workers, Queued, InFlight func() int
	// Redelivered counts tasks handed to another worker after theirs left.
	Redelivered func() uint64
	// Subscribers and SubscriberQueue read the component's publisher: its
	// subscriptions and the messages waiting in their queues.
	Subscribers, SubscriberQueue func() int
	// Dropped counts messages published that reached no subscriber.
	Dropped func() uint64
	// Missed counts messages an upstream published while this stage's
	// subscription was broken.
	Missed func() uint64
	// SlowCut counts subscriptions cut for not reading.
	SlowCut func() uint64
	// CacheKeys reads the number of keys in the cache.
	CacheKeys func() int
	// AuthFailures counts calls that failed to authenticate (an unknown
	// token, or no credentials); AuthRefused, calls refused unchecked
	// because their address or connection failed too often.
	AuthFailures, AuthRefused func() uint64

	// For palm.v1.InfoService: the steps served now, a master's workers,
	// and a stage's upstreams (topic@address).
	Functions func() []string
	Roster    func() []Worker
	Upstreams []string
	// Pipelined: the component sends its results on to the next step
	// rather than back to the client.
	Pipelined bool
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
	for name, f := range map[string]func() int{
		"workers_connected": s.Workers, "tasks_queued": s.Queued, "tasks_in_flight": s.InFlight,
		"subscribers": s.Subscribers, "subscriber_queue_messages": s.SubscriberQueue, "cache_keys": s.CacheKeys,
	} {
		if f != nil {
			out[name] = uint64(max(0, f()))
		}
	}
	for name, f := range map[string]func() uint64{
		"tasks_redelivered": s.Redelivered, "published_dropped": s.Dropped, "subscription_missed": s.Missed,
		"slow_subscribers_cut": s.SlowCut,
		"auth_failures":        s.AuthFailures, "auth_throttled": s.AuthRefused,
	} {
		if f != nil {
			out[name] = f()
		}
	}
	return out
}

var (
	descIn          = prometheus.NewDesc("palm_messages_in_total", "Messages taken in, by step (server.function).", []string{"step"}, nil)
	descOut         = prometheus.NewDesc("palm_messages_out_total", "Results sent on (to the client or the next step), by step.", []string{"step"}, nil)
	descFailed      = prometheus.NewDesc("palm_function_errors_total", "Messages that failed, by the step that failed.", []string{"step"}, nil)
	descWorkers     = prometheus.NewDesc("palm_workers_connected", "Workers connected now.", nil, nil)
	descQueued      = prometheus.NewDesc("palm_tasks_queued", "Tasks waiting for a worker.", nil, nil)
	descInFlight    = prometheus.NewDesc("palm_tasks_in_flight", "Tasks held by workers, not yet done.", nil, nil)
	descRedelivered = prometheus.NewDesc("palm_tasks_redelivered_total", "Tasks handed to another worker after the one holding them left.", nil, nil)
	descSubs        = prometheus.NewDesc("palm_subscribers", "Subscriptions open now.", nil, nil)
	descSubQueue    = prometheus.NewDesc("palm_subscriber_queue_messages", "Messages waiting in the subscribers' queues.", nil, nil)
	descDropped     = prometheus.NewDesc("palm_published_dropped_total", "Messages published that reached no subscriber.", nil, nil)
	descMissed      = prometheus.NewDesc("palm_subscription_missed_total", "Messages an upstream published while the subscription was broken.", nil, nil)
	descSlowCut     = prometheus.NewDesc("palm_slow_subscribers_cut_total", "Subscriptions cut because they did not read for the slow subscriber timeout.", nil, nil)
	descCache       = prometheus.NewDesc("palm_cache_keys", "Keys in the component's cache.", nil, nil)
	descAuthFailed  = prometheus.NewDesc("palm_auth_failures_total", "Calls that failed to authenticate: an unknown bearer token, or no known credentials.", nil, nil)
	descAuthRefused = prometheus.NewDesc("palm_auth_throttled_total", "Calls refused unchecked (ResourceExhausted) because their address or connection failed to authenticate too often.", nil, nil)
)

// collector reads a Source when scraped.
type collector struct{ src Source }

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
	gauge := func(d *prometheus.Desc, f func() int) {
		if f != nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(f()))
		}
	}
	counter := func(d *prometheus.Desc, f func() uint64) {
		if f != nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(f()))
		}
	}
	gauge(descWorkers, s.Workers)
	gauge(descQueued, s.Queued)
	gauge(descInFlight, s.InFlight)
	counter(descRedelivered, s.Redelivered)
	gauge(descSubs, s.Subscribers)
	gauge(descSubQueue, s.SubscriberQueue)
	counter(descDropped, s.Dropped)
	counter(descMissed, s.Missed)
	counter(descSlowCut, s.SlowCut)
	gauge(descCache, s.CacheKeys)
	counter(descAuthFailed, s.AuthFailures)
	counter(descAuthRefused, s.AuthRefused)
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
	s := &Set{reg: wrapped}
	for _, c := range []prometheus.Collector{collector{src}, server} {
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
