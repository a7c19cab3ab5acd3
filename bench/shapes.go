package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/rawecho"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// A system is one thing under measurement, started once per payload size
// and measured once per run: move sends n copies of payload through it and
// returns how long the whole took, first send to last reply.
type system struct {
	move func(ctx context.Context, payload []byte, n int) (time.Duration, error)
	stop func()
}

// startTimeout bounds every wait for a server or a worker to be ready.
const startTimeout = 10 * time.Second

func quiet() palm.Option { return palm.WithLogger(hclog.NewNullLogger()) }

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// startRaw serves the raw echo with grpc-go's defaults and returns a system
// that sends pack messages per Send over one bidi stream.
func startRaw(pack int) (*system, error) {
	lis, err := listen()
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer()
	palmv1.RegisterGatewayServiceServer(s, rawecho.Server{})
	go s.Serve(lis)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.Stop()
		return nil, err
	}
	raw := palmv1.NewGatewayServiceClient(cc)
	move := func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
		return rawecho.Stream(ctx, raw, "server.foo", payload, n, pack)
	}
	return &system{move: move, stop: func() { cc.Close(); s.Stop() }}, nil
}

// natsWindow bounds the requests the NATS publisher has in flight, so that
// no subscriber's pending queue (65,536 messages by default) overflows and
// drops messages: a bounded queue on either side, like palm's window.
const natsWindow = 8192

// startNATS embeds a NATS server with a queue group of two subscribers on
// their own connections, each replying with the payload it got.
func startNATS() (*system, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	var conns []*nats.Conn
	stop := func() {
		for _, nc := range conns {
			nc.Close()
		}
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	if !ns.ReadyForConnections(startTimeout) {
		stop()
		return nil, errors.New("nats server not ready in time")
	}
	var asyncErr atomic.Pointer[error]
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErr.Store(&err) })
	for range 2 {
		nc, err := nats.Connect(ns.ClientURL(), onErr)
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, nc)
		if _, err := nc.QueueSubscribe("foo", "workers", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
			stop()
			return nil, err
		}
		if err := nc.Flush(); err != nil {
			stop()
			return nil, err
		}
	}
	pub, err := nats.Connect(ns.ClientURL(), onErr)
	if err != nil {
		stop()
		return nil, err
	}
	conns = append(conns, pub)
	move := func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
		inbox := pub.NewInbox()
		slots := make(chan struct{}, natsWindow)
		done := make(chan struct{})
		var got atomic.Int64
		sub, err := pub.Subscribe(inbox, func(*nats.Msg) {
			<-slots
			if got.Add(1) == int64(n) {
				close(done)
			}
		})
		if err != nil {
			return 0, err
		}
		defer sub.Unsubscribe()
		if err := pub.Flush(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		for range n {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return 0, fmt.Errorf("nats after %d of %d replies: %w", got.Load(), n, ctx.Err())
			}
			if err := pub.PublishRequest("foo", inbox, payload); err != nil {
				return 0, err
			}
		}
		select {
		case <-done:
		case <-ctx.Done():
			if e := asyncErr.Load(); e != nil {
				return 0, fmt.Errorf("nats after %d of %d replies: %w", got.Load(), n, *e)
			}
			return 0, fmt.Errorf("nats after %d of %d replies: %w", got.Load(), n, ctx.Err())
		}
		return time.Since(t0), nil
	}
	return &system{move: move, stop: stop}, nil
}

// echo is the function every palm shape serves.
func echo(_ context.Context, p []byte) ([]byte, error) { return p, nil }

// jobMove sends one Job of n payloads to server.foo and counts the replies.
func jobMove(c *client.Client) func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
	return func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
		t0 := time.Now()
		got := 0
		for _, err := range c.Job(ctx, "server.foo", client.Repeat(payload, n)) {
			if err != nil {
				return 0, fmt.Errorf("job after %d of %d replies: %w", got, n, err)
			}
			got++
		}
		if got != n {
			return 0, fmt.Errorf("job ended with %d of %d replies", got, n)
		}
		return time.Since(t0), nil
	}
}

// startMaster serves master "server" with two workers serving foo, all with
// palm's defaults, and a client for it.
func startMaster() (*system, error) {
	m, err := master.New("server", quiet())
	if err != nil {
		return nil, err
	}
	lis, err := listen()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, lis) }()
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var c *client.Client
	stop := func() {
		if c != nil {
			c.Close()
		}
		stopWorkers()
		wg.Wait()
		cancel()
		<-served
	}
	for _, name := range []string{"w1", "w2"} {
		w, err := worker.New(name, lis.Addr().String(), quiet())
		if err != nil {
			stop()
			return nil, err
		}
		w.HandleFunc("foo", echo)
		wg.Go(func() { w.Run(wctx) })
	}
	for deadline := time.Now().Add(startTimeout); m.Workers() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%d of 2 workers joined the master in %v", m.Workers(), startTimeout)
		}
	}
	c, err = client.New("server", lis.Addr().String(), quiet())
	if err != nil {
		stop()
		return nil, err
	}
	return &system{move: jobMove(c), stop: stop}, nil
}

// startServer serves palm's standalone server "server" with foo and a
// client for it.
func startServer() (*system, error) {
	srv, err := pipeline.NewServer("server", quiet())
	if err != nil {
		return nil, err
	}
	srv.HandleFunc("foo", echo)
	lis, err := listen()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	c, err := client.New("server", lis.Addr().String(), quiet())
	if err != nil {
		cancel()
		<-served
		return nil, err
	}
	return &system{move: jobMove(c), stop: func() { c.Close(); cancel(); <-served }}, nil
}
