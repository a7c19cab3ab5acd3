package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/palmtest"
)

// stopTimeout is the stop timeout of the stop tests, and stopMargin what a
// loaded machine may add to a stop: far more than a stop takes there, and
// far less than a bound several times too long would add.
const (
	stopTimeout = 300 * time.Millisecond
	stopMargin  = 4 * time.Second
)

// endless is a GatewayService whose streams end only when their context
// does, as a client that never half-closes keeps them; it says when one
// has started.
type endless struct {
	palmv1.UnimplementedGatewayServiceServer
	started chan struct{}
}

func (e endless) Stream(stream palmv1.GatewayService_StreamServer) error {
	e.started <- struct{}{}
	<-stream.Context().Done()
	return status.FromContextError(stream.Context().Err()).Err()
}

// blockingDrain is a drain that cannot finish what it holds: it waits for
// its bound.
func blockingDrain(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// stubborn is a Runner that ignores its context until released.
type stubborn struct{ release chan struct{} }

func (s stubborn) Run(context.Context) error {
	<-s.release
	return nil
}

// A stream that never ends cannot hold a stopping server: Serve waits the
// stop timeout for it (and for a drain that cannot finish), then closes
// the connection, and returns soon after. ServeWith waits for a runner that
// ignores its context only what is left of the same bound. The stop is
// timed, so a bound several times too long fails.
func TestStopIsBoundedByTheStopTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain func(context.Context) error
		run   bool
		// the stop takes at least min and at most max
		min, max time.Duration
	}{
		{"Serve, an endless stream", nil, false, stopTimeout, stopTimeout + stopMargin},
		{"Serve, an endless stream and a drain that cannot finish", blockingDrain, false, stopTimeout, stopTimeout + stopMargin},
		{"ServeWith, a runner that ignores its context", blockingDrain, true, stopTimeout, stopTimeout + stopMargin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.New(nil)
			cfg.StopTimeout = stopTimeout
			s := New(cfg, palmtest.Logger(t, hclog.Warn))
			svc := endless{started: make(chan struct{}, 1)}
			s.Register(&palmv1.GatewayService_ServiceDesc, svc)
			l := palmtest.Listen()
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			runner := stubborn{release: make(chan struct{})}
			release := sync.OnceFunc(func() { close(runner.release) })
			defer release()
			served := make(chan error, 1)
			go func() {
				if tc.run {
					served <- s.ServeWith(ctx, l, runner, tc.drain)
				} else {
					served <- s.Serve(ctx, l, tc.drain)
				}
			}()
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := palmv1.NewGatewayServiceClient(l.Conn(t)).Stream(cctx)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-svc.started:
			case <-cctx.Done():
				t.Fatal("the stream never reached the server")
			}

			stop()
			began := time.Now()
			var took time.Duration
			select {
			case err := <-served:
				took = time.Since(began)
				if err != nil {
					t.Fatalf("Serve: %v", err)
				}
			case <-time.After(tc.max):
				t.Errorf("the server has not stopped %v after its context ended, with a stop timeout of %v", tc.max, stopTimeout)
				release()
				<-served
				return
			}
			t.Logf("stopped in %v, with a stop timeout of %v", took.Round(time.Millisecond), stopTimeout)
			if took < tc.min {
				t.Errorf("stopped in %v; want it to wait %v for the stream, gracefully, before closing it", took, tc.min)
			}
			if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
				t.Errorf("the endless stream ended with %v; want Unavailable, for the server closed its connection", err)
			}
		})
	}
}
