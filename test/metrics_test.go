package test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
)

// scrape reads the metrics served at addr and returns each sample as
// `name{labels} value` lines, labels sorted as Prometheus prints them.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// has checks that the exposition holds a sample whose line starts with
// want (a metric name and its labels) and has the value given.
func has(t *testing.T, exposition, want, value string) {
	t.Helper()
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, want+" ") {
			if got := strings.TrimPrefix(l, want+" "); got != value {
				t.Errorf("%s = %s, want %s", want, got, value)
			}
			return
		}
	}
	t.Errorf("no sample %s in:\n%s", want, grep(exposition, "palm_"))
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A master with two workers and a pipeline after it, each serving
// /metrics: after a job, the counts are the job's.
func TestMetricsAfterAJob(t *testing.T) {
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := master.New("server", quietLog(t), master.Pipelined(), palm.WithMetricsListener(mlis))
	if err != nil {
		t.Fatal(err)
	}
	maddr := palmtest.ServeTCP(t, m)
	startWorkers(t, maddr, 2)
	plis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.NewPipeline("my_pipeline", pipeline.Upstream{Address: maddr, Topic: "server"}, quietLog(t), palm.WithMetricsListener(plis))
	if err != nil {
		t.Fatal(err)
	}
	p.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
		if string(m) == "worker1 processed bad" || string(m) == "worker2 processed bad" {
			return nil, io.ErrUnexpectedEOF
		}
		return m, nil
	})
	paddr := palmtest.ServeTCP(t, p)
	palmtest.Eventually(t, 10*time.Second, "the cluster is up", func() bool { return m.Workers() == 2 && p.Subscribed() == 1 })

	c, err := client.New("server", maddr, quietLog(t), client.SubAddress(paddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := shortCtx(t, 20*time.Second)
	replies, failures := 0, 0
	payloads := func(yield func([]byte) bool) {
		for i := range 100 {
			p := []byte("x")
			if i == 50 {
				p = []byte("bad")
			}
			if !yield(p) {
				return
			}
		}
	}
	for _, err := range c.Job(ctx, client.Steps("server.foo", "my_pipeline.foo"), payloads) {
		if err != nil {
			failures++
		} else {
			replies++
		}
	}
	if replies != 99 || failures != 1 {
		t.Fatalf("%d replies and %d failures, want 99 and 1", replies, failures)
	}
	if _, err := c.Set(ctx, "a-key", []byte("v")); err != nil {
		t.Fatal(err)
	}

	ms := scrape(t, mlis.Addr().String())
	const master = `{component="server",kind="master"`
	has(t, ms, `palm_messages_in_total`+master+`,step="server.foo"}`, "100")
	has(t, ms, `palm_messages_out_total`+master+`,step="server.foo"}`, "100")
	has(t, ms, `palm_function_errors_total`+master+`,step="server.foo"}`, "0")
	has(t, ms, `palm_workers_connected`+master+`}`, "2")
	has(t, ms, `palm_tasks_queued`+master+`}`, "0")
	has(t, ms, `palm_tasks_in_flight`+master+`}`, "0")
	has(t, ms, `palm_tasks_redelivered_total`+master+`}`, "0")
	has(t, ms, `palm_subscribers`+master+`}`, "1")
	has(t, ms, `palm_cache_keys`+master+`}`, "1")
	has(t, ms, `grpc_server_handled_total{component="server",grpc_code="OK",grpc_method="Set",grpc_service="palm.v1.CacheService",grpc_type="unary",kind="master"}`, "1")
	if !strings.Contains(ms, "go_goroutines") {
		t.Error("a component's own registry has no Go runtime metrics")
	}

	ps := scrape(t, plis.Addr().String())
	const stage = `{component="my_pipeline",kind="pipeline"`
	has(t, ps, `palm_messages_in_total`+stage+`,step="my_pipeline.foo"}`, "100")
	has(t, ps, `palm_messages_out_total`+stage+`,step="my_pipeline.foo"}`, "99")
	has(t, ps, `palm_function_errors_total`+stage+`,step="my_pipeline.foo"}`, "1")
	has(t, ps, `palm_subscription_missed_total`+stage+`}`, "0")
	c.Close() // a Client keeps its subscription between calls, until it has been idle a while
	palmtest.Eventually(t, 10*time.Second, "the client's subscription ends with the client", func() bool {
		return strings.Contains(scrape(t, plis.Addr().String()), `palm_subscribers`+stage+`} 0`)
	})
	parser := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(ps)); err != nil {
		t.Errorf("the exposition does not parse: %v", err)
	}
}

// Components that share a registry are told apart by name; two of the
// same name cannot serve at once.
func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	serve := func(name string) error {
		srv, err := pipeline.NewServer(name, quietLog(t), palm.WithMetrics(reg))
		if err != nil {
			t.Fatal(err)
		}
		srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return m, nil })
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, lis) }()
		select {
		case err := <-done:
			cancel()
			return err
		case <-time.After(200 * time.Millisecond):
		}
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		return nil
	}
	if err := serve("one"); err != nil {
		t.Fatal(err)
	}
	if err := serve("two"); err != nil {
		t.Fatal(err)
	}
	if err := serve("one"); err == nil || !strings.Contains(err.Error(), `a component named "one" is already registered`) {
		t.Fatalf("a second component named one: %v", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "component" {
					names[l.GetValue()] = true
				}
			}
		}
	}
	if !names["one"] || !names["two"] {
		t.Errorf("components in the registry: %v", names)
	}
}
