package server

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/palmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type panicky struct {
	palmv1.UnimplementedGatewayServiceServer
}

func (panicky) Eval(context.Context, *palmv1.EvalRequest) (*palmv1.EvalResponse, error) {
	panic("out of cheese")
}

// Calls are logged through hclog by the middleware's logging interceptor,
// a panic in a handler becomes Internal and is logged, and health answers.
func TestInterceptorsAndHealth(t *testing.T) {
	logs := &palmtest.Buffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	s := New(config.New(nil), logger)
	s.Register(&palmv1.GatewayService_ServiceDesc, panicky{})
	l := palmtest.Listen()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l, nil) }()
	cc := l.Conn(t)

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	h, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{Service: "palm.v1.GatewayService"})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	_, err = palmv1.NewGatewayServiceClient(cc).Eval(cctx, &palmv1.EvalRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "out of cheese") {
		t.Fatalf("panicking handler: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{"[DEBUG] finished call", "grpc.method=Check", "[ERROR] panic while serving a call", "out of cheese", "[WARN]  finished call", "grpc.code=Internal", "[INFO]  stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestLevels(t *testing.T) {
	if codeLevel(codes.NotFound) >= codeLevel(codes.Internal) {
		t.Error("a client's mistake must log below a server failure")
	}
}

func TestOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 1}, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 1}, false}, // every interface
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, true},
	} {
		if got := onLoopback(tc.addr); got != tc.want {
			t.Errorf("onLoopback(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
