package test

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/compose"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/parts"
)

// greeter is a part a user writes: a bypass part that serves a gRPC
// service of its own, describes itself and drains.
type greeter struct {
	testgrpc.UnimplementedTestServiceServer
	calls   atomic.Uint64
	drained *drainLog
}

func (g *greeter) Run(ctx context.Context, _ *parts.Link) error {
	<-ctx.Done()
	return nil
}

func (g *greeter) RegisterServices(r parts.Registrar) {
	testgrpc.RegisterTestServiceServer(r, g)
}

func (g *greeter) Describe(d *parts.Description) {
	d.Counter("greeter_calls", "Calls to the greeter.", g.calls.Load)
	d.Note("greeting", "hello")
}

func (g *greeter) Drain(context.Context) error {
	g.drained.add("Greeter")
	return nil
}

func (g *greeter) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	g.calls.Add(1)
	return &testgrpc.Empty{}, nil
}

// drainLog records the order parts drained in.
type drainLog struct {
	mu    sync.Mutex
	order []string
}

func (l *drainLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.order = append(l.order, name)
}

// loggedGateway is palm's gateway, recording its drain.
type loggedGateway struct {
	*parts.Gateway
	drained *drainLog
}

func (g loggedGateway) Drain(ctx context.Context) error {
	g.drained.add("Pull")
	return g.Gateway.Drain(ctx)
}

// upper is an outbound part written as a function: it answers each message
// with its payload in capitals.
func upper(ctx context.Context, link *parts.Link) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-link.Inbox():
			reply := palm.ChangePayload(e.Msg, bytes.ToUpper(e.Msg.GetPayload()))
			if err := link.Send(ctx, parts.Envelope{Msg: reply, Origin: e.Origin, Sequence: e.Sequence, Done: true}); err != nil {
				return nil
			}
		}
	}
}

// A component composed with a user-written part that serves a gRPC service
// of its own: grpcurl lists it, health reports it, InfoService and the
// metrics describe it, and it drains on stop, after the inbound part.
func TestComposedPartService(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c, err := compose.New("custom", palm.WithLogger(palmtest.Logger(t, 0)), palm.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	drained := &drainLog{}
	g := &greeter{drained: drained}
	c.Inbound(compose.Pull, loggedGateway{parts.NewGateway(parts.GatewayConfig{}), drained}, "Upper")
	c.Outbound("Upper", parts.PartFunc(upper), compose.Pub)
	c.Outbound(compose.Pub, &parts.Replies{}, "")
	c.Bypass("Greeter", g)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	ctx, cancelServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, lis) }()
	stop := sync.OnceValue(func() error { cancelServe(); return <-served })
	defer stop()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cl, err := client.New("custom", addr, client.WaitForServer(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := cl.Eval(cctx, "custom.shout", []byte("hello"))
	if err != nil || string(got) != "HELLO" {
		t.Fatalf("Eval through the composed parts: %q, %v", got, err)
	}

	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(cctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("the part's own service: %v", err)
	}
	h, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{Service: "grpc.testing.TestService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health of the part's service: %v, %v", h.GetStatus(), err)
	}

	info, err := palmv1.NewInfoServiceClient(conn).Info(cctx, &palmv1.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != "component" || !slices.Contains(info.GetServices(), "grpc.testing.TestService") {
		t.Errorf("info: kind %q, services %v", info.GetKind(), info.GetServices())
	}
	var names []string
	for _, p := range info.GetParts() {
		names = append(names, p.GetName()+":"+p.GetKind()+">"+p.GetRoute())
		if p.GetName() == "Greeter" && (!slices.Equal(p.GetServices(), []string{"grpc.testing.TestService"}) || p.GetNotes()["greeting"] != "hello") {
			t.Errorf("info describes the greeter as %v", p)
		}
	}
	if want := []string{"Pull:inbound>Upper", "Upper:outbound>Pub", "Pub:outbound>", "Greeter:bypass>"}; !slices.Equal(names, want) {
		t.Errorf("info lists the parts %v, want %v", names, want)
	}
	if n := info.GetCounters()["greeter_calls"]; n != 1 {
		t.Errorf("info counts %d greeter calls, want 1 (counters %v)", n, info.GetCounters())
	}
	if n := gathered(t, reg, "palm_greeter_calls_total"); n != 1 {
		t.Errorf("palm_greeter_calls_total = %v, want 1", n)
	}

	out := grpcurlRun(t, addr, "list")
	if !strings.Contains(out, "grpc.testing.TestService") {
		t.Errorf("grpcurl list does not show the part's service:\n%s", out)
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	drained.mu.Lock()
	defer drained.mu.Unlock()
	if want := []string{"Pull", "Greeter"}; !slices.Equal(drained.order, want) {
		t.Errorf("parts drained in the order %v, want %v", drained.order, want)
	}
}

// grpcurlRun runs grpcurl in plaintext against addr and returns what it
// printed; it fails the test when grpcurl fails.
func grpcurlRun(t *testing.T, addr string, args ...string) string {
	t.Helper()
	r := run(t, toolTimeout, t.TempDir(), grpcurlBinary(t), append([]string{"-plaintext", addr}, args...)...)
	if r.err != nil {
		t.Fatalf("grpcurl %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// A route naming no outbound part, a name given twice and a nil part are
// reported by Serve, before it serves, naming what is wrong.
func TestComposedRoutesChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		build func(c *compose.Component)
		want  string
	}{
		{"unknown route", func(c *compose.Component) {
			c.Inbound(compose.Pull, parts.NewGateway(parts.GatewayConfig{}), "WorkerPsh")
			c.Outbound("WorkerPush", parts.NewDispatcher(parts.DispatcherConfig{}), "")
		}, `part "Pull" routes to "WorkerPsh", which is not a registered outbound part (registered: "WorkerPush")`},
		{"taken name", func(c *compose.Component) {
			c.Outbound("Pub", &parts.Replies{}, "")
			c.Outbound("Pub", &parts.Replies{}, "")
		}, `a part named "Pub" is already registered`},
		{"nil part", func(c *compose.Component) { c.Bypass("Cache", nil) }, `part "Cache" is nil`},
		{"no parts", func(*compose.Component) {}, `has no parts`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := compose.New("broken")
			if err != nil {
				t.Fatal(err)
			}
			tc.build(c)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			err = c.Serve(context.Background(), lis)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve: %v, want an error with %q", err, tc.want)
			}
			if _, err := net.Dial("tcp", lis.Addr().String()); err == nil {
				t.Error("the listener is still open after Serve refused to start")
			}
		})
	}
}
