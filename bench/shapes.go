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

// A system is one thing under measurement, started once per table and
// measured once per run. move sends n copies of payload through it and
// returns how long the whole took, first send to last reply; rtt makes k
// round trips one after the other and returns the time of each. A system
// has move, rtt or both, as its sections need.
type system struct {
	move func(ctx context.Context, payload []byte, n int) (time.Duration, error)
	rtt  func(ctx context.Context, payload []byte, k int) ([]time.Duration, error)
	stop func()
}

// A shape is a named way of starting a system.
type shape struct {
	name  string
	start func() (*system, error)
}

// startTimeout bounds every wait for a server, a worker or a subscription
// to be ready.
const startTimeout = 10 * time.Second

func quiet() palm.Option { return palm.WithLogger(hclog.NewNullLogger()) }

// A stack holds the stop functions of what a shape started, to call in
// reverse order.
type stack []func()

func (s *stack) push(f func()) { *s = append(*s, f) }

func (s stack) stop() {
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}

// serve runs srv on a fresh loopback listener until st stops, and returns
// its address.
func serve(st *stack, srv interface {
	Serve(context.Context, net.Listener) error
}) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	st.push(func() { cancel(); <-served })
	return lis.Addr().String(), nil
}

// waitFor polls ready every millisecond until it holds or startTimeout
// passes; what names the thing waited for in the error.
func waitFor(what string, ready func() bool) error {
	for deadline := time.Now().Add(startTimeout); !ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready in %v", what, startTimeout)
		}
	}
	return nil
}

// sequential makes k round trips with one, one after the other, and returns
// the time each took.
func sequential(ctx context.Context, k int, one func(context.Context) error) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, k)
	for i := range k {
		t0 := time.Now()
		if err := one(ctx); err != nil {
			return nil, fmt.Errorf("round trip %d of %d: %w", i+1, k, err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// split runs f(i, share) for i in [0, parts) at once, the n messages shared
// out among them, and returns how long all took and the first error.
func split(n, parts int, f func(i, share int) error) (time.Duration, error) {
	errs := make([]error, parts)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range parts {
		share := n / parts
		if i < n%parts {
			share++
		}
		wg.Go(func() { errs[i] = f(i, share) })
	}
	wg.Wait()
	return time.Since(t0), errors.Join(errs...)
}

// startRawConn serves the raw echo with grpc-go's defaults and returns a
// client for it.
func startRawConn(st *stack) (palmv1.GatewayServiceClient, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer()
	palmv1.RegisterGatewayServiceServer(s, rawecho.Server{})
	go s.Serve(lis)
	st.push(s.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	st.push(func() { cc.Close() })
	return palmv1.NewGatewayServiceClient(cc), nil
}

// startRaw returns a raw echo system whose move sends pack messages per
// Send over one bidi stream and whose rtt is a unary Eval.
func startRaw(pack int) (*system, error) {
	var st stack
	raw, err := startRawConn(&st)
	if err != nil {
		st.stop()
		return nil, err
	}
	move := func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
		return rawecho.Stream(ctx, raw, "server.foo", payload, n, pack)
	}
	rtt := func(ctx context.Context, payload []byte, k int) ([]time.Duration, error) {
		req := &palmv1.EvalRequest{Message: rawMessage(payload)}
		return sequential(ctx, k, func(ctx context.Context) error {
			_, err := raw.Eval(ctx, req)
			return err
		})
	}
	return &system{move: move, rtt: rtt, stop: st.stop}, nil
}

// startRawPingPong returns a raw echo system whose rtt sends one message
// over a bidi stream and waits for it to come back before the next.
func startRawPingPong() (*system, error) {
	var st stack
	raw, err := startRawConn(&st)
	if err != nil {
		st.stop()
		return nil, err
	}
	rtt := func(ctx context.Context, payload []byte, k int) ([]time.Duration, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := raw.Stream(ctx)
		if err != nil {
			return nil, err
		}
		req := &palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{rawMessage(payload)}}
		return sequential(ctx, k, func(context.Context) error {
			if err := s.Send(req); err != nil {
				return err
			}
			_, err := s.Recv()
			return err
		})
	}
	return &system{rtt: rtt, stop: st.stop}, nil
}

func rawMessage(payload []byte) *palmv1.PalmMessage {
	return &palmv1.PalmMessage{Client: rawecho.Client, Pipeline: rawecho.Pipeline, Function: "server.foo", Payload: payload, Sequence: 1}
}

// natsWindow bounds the requests all the NATS publishers of a system have
// in flight together, so that no subscriber's pending queue (65,536
// messages by default) overflows and drops messages: a bounded queue on
// either side, like palm's window.
const natsWindow = 8192

// startNATS embeds a NATS server with a queue group of subs subscribers on
// their own connections, each replying with the payload it got, and pubs
// publishing connections that share out the messages of a move. rtt is a
// request on the first publisher.
func startNATS(subs, pubs int) (*system, error) {
	var st stack
	fail := func(err error) (*system, error) { st.stop(); return nil, err }
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	st.push(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(startTimeout) {
		return fail(errors.New("nats server not ready in time"))
	}
	var asyncErr atomic.Pointer[error]
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErr.Store(&err) })
	connect := func() (*nats.Conn, error) {
		nc, err := nats.Connect(ns.ClientURL(), onErr)
		if err != nil {
			return nil, err
		}
		st.push(nc.Close)
		return nc, nil
	}
	for range subs {
		nc, err := connect()
		if err != nil {
			return fail(err)
		}
		if _, err := nc.QueueSubscribe("foo", "workers", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
			return fail(err)
		}
		if err := nc.Flush(); err != nil {
			return fail(err)
		}
	}
	var publishers []*nats.Conn
	for range pubs {
		nc, err := connect()
		if err != nil {
			return fail(err)
		}
		publishers = append(publishers, nc)
	}
	window := max(1, natsWindow/pubs)
	move := func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
		return split(n, pubs, func(i, share int) error {
			return natsPublish(ctx, publishers[i], payload, share, window, &asyncErr)
		})
	}
	rtt := func(ctx context.Context, payload []byte, k int) ([]time.Duration, error) {
		return sequential(ctx, k, func(ctx context.Context) error {
			_, err := publishers[0].RequestWithContext(ctx, "foo", payload)
			return err
		})
	}
	return &system{move: move, rtt: rtt, stop: st.stop}, nil
}

// natsPublish sends n requests with payload from pub, at most window of
// them unanswered at a time, and waits for the n replies on one inbox
// subscription.
func natsPublish(ctx context.Context, pub *nats.Conn, payload []byte, n, window int, asyncErr *atomic.Pointer[error]) error {
	if n == 0 {
		return nil
	}
	inbox := pub.NewInbox()
	slots := make(chan struct{}, window)
	done := make(chan struct{})
	var got atomic.Int64
	sub, err := pub.Subscribe(inbox, func(*nats.Msg) {
		<-slots
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := pub.Flush(); err != nil {
		return err
	}
	for range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("nats after %d of %d replies: %w", got.Load(), n, ctx.Err())
		}
		if err := pub.PublishRequest("foo", inbox, payload); err != nil {
			return err
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if e := asyncErr.Load(); e != nil {
			return fmt.Errorf("nats after %d of %d replies: %w", got.Load(), n, *e)
		}
		return fmt.Errorf("nats after %d of %d replies: %w", got.Load(), n, ctx.Err())
	}
}

// echo is the function every palm shape serves.
func echo(_ context.Context, p []byte) ([]byte, error) { return p, nil }

// job sends one Job of n payloads to function on c and counts the replies.
func job(ctx context.Context, c *client.Client, function string, payload []byte, n int) error {
	got := 0
	for _, err := range c.Job(ctx, function, client.Repeat(payload, n)) {
		if err != nil {
			return fmt.Errorf("job after %d of %d replies: %w", got, n, err)
		}
		got++
	}
	if got != n {
		return fmt.Errorf("job ended with %d of %d replies", got, n)
	}
	return nil
}

// jobsMove is a move that shares the messages out among clients, each
// sending its share to function in one Job, all at once.
func jobsMove(clients []*client.Client, function string) func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
	return func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
		return split(n, len(clients), func(i, share int) error {
			if share == 0 {
				return nil
			}
			return job(ctx, clients[i], function, payload, share)
		})
	}
}

// evalRTT is an rtt of Evals to function on c.
func evalRTT(c *client.Client, function string) func(ctx context.Context, payload []byte, k int) ([]time.Duration, error) {
	return func(ctx context.Context, payload []byte, k int) ([]time.Duration, error) {
		return sequential(ctx, k, func(ctx context.Context) error {
			_, err := c.Eval(ctx, function, payload)
			return err
		})
	}
}

// newClients makes n palm clients of server at address, with every default
// but opts, and stops them with st.
func newClients(st *stack, n int, address string, opts ...client.Option) ([]*client.Client, error) {
	var cs []*client.Client
	for range n {
		c, err := client.New("server", address, append([]client.Option{quiet()}, opts...)...)
		if err != nil {
			return nil, err
		}
		st.push(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs, nil
}

// startMaster serves master "server" with workers workers serving foo (which
// calls work first, when given) and clients clients, all with palm's
// defaults. A move shares its messages out among the clients, one Job each;
// rtt is Eval on the first client.
func startMaster(workers, clients int, work func()) (*system, error) {
	var st stack
	fail := func(err error) (*system, error) { st.stop(); return nil, err }
	m, err := master.New("server", quiet())
	if err != nil {
		return nil, err
	}
	addr, err := serve(&st, m)
	if err != nil {
		return fail(err)
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	st.push(func() { stopWorkers(); wg.Wait() })
	foo := echo
	if work != nil {
		foo = func(ctx context.Context, p []byte) ([]byte, error) { work(); return p, nil }
	}
	for i := range workers {
		w, err := worker.New(fmt.Sprintf("w%d", i+1), addr, quiet())
		if err != nil {
			return fail(err)
		}
		w.HandleFunc("foo", foo)
		wg.Go(func() { w.Run(wctx) })
	}
	if err := waitFor(fmt.Sprintf("%d workers joining the master", workers), func() bool { return m.Workers() >= workers }); err != nil {
		return fail(err)
	}
	cs, err := newClients(&st, clients, addr)
	if err != nil {
		return fail(err)
	}
	return &system{move: jobsMove(cs, "server.foo"), rtt: evalRTT(cs[0], "server.foo"), stop: st.stop}, nil
}

// startServer serves palm's standalone server "server" with foo and a
// client for it: move is one Job, rtt Eval.
func startServer() (*system, error) {
	var st stack
	fail := func(err error) (*system, error) { st.stop(); return nil, err }
	srv, err := pipeline.NewServer("server", quiet())
	if err != nil {
		return nil, err
	}
	srv.HandleFunc("foo", echo)
	addr, err := serve(&st, srv)
	if err != nil {
		return fail(err)
	}
	cs, err := newClients(&st, 1, addr)
	if err != nil {
		return fail(err)
	}
	return &system{move: jobsMove(cs, "server.foo"), rtt: evalRTT(cs[0], "server.foo"), stop: st.stop}, nil
}

// A chain is a pipeline of stages echoing components: a Pipelined
// standalone server "server", then Pipelines "stage2", "stage3"... each
// subscribed to the one before, the last sending its results to the client.
type chain struct {
	first, last string // addresses: where clients send, where they subscribe
	steps       string // the function of a message through every stage
}

// startChain serves a chain of stages (at least 2) until st stops, and
// waits for every stage to be subscribed.
func startChain(st *stack, stages int) (chain, error) {
	srv, err := pipeline.NewServer("server", quiet(), pipeline.Pipelined())
	if err != nil {
		return chain{}, err
	}
	srv.HandleFunc("foo", echo)
	addr, err := serve(st, srv)
	if err != nil {
		return chain{}, err
	}
	ch := chain{first: addr}
	steps := []string{"server.foo"}
	upstream := "server"
	for i := 2; i <= stages; i++ {
		name := fmt.Sprintf("stage%d", i)
		opts := []pipeline.StageOption{quiet()}
		if i < stages {
			opts = append(opts, pipeline.Pipelined())
		}
		p, err := pipeline.NewPipeline(name, pipeline.Upstream{Address: addr, Topic: upstream}, opts...)
		if err != nil {
			return chain{}, err
		}
		p.HandleFunc("foo", echo)
		if addr, err = serve(st, p); err != nil {
			return chain{}, err
		}
		if err := waitFor(name+" subscribing to "+upstream, func() bool { return p.Subscribed() > 0 }); err != nil {
			return chain{}, err
		}
		steps = append(steps, name+".foo")
		upstream = name
	}
	ch.last, ch.steps = addr, client.Steps(steps...)
	return ch, nil
}

// startChainJob serves a chain of stages and one client subscribed to its
// last stage: move is one Job through every stage.
func startChainJob(stages int) (*system, error) {
	var st stack
	fail := func(err error) (*system, error) { st.stop(); return nil, err }
	ch, err := startChain(&st, stages)
	if err != nil {
		return fail(err)
	}
	cs, err := newClients(&st, 1, ch.first, client.SubAddress(ch.last))
	if err != nil {
		return fail(err)
	}
	return &system{move: jobsMove(cs, ch.steps), stop: st.stop}, nil
}

// startChainEvals serves a chain of stages and clients clients subscribed
// to its last stage; a move makes its n messages callers Evals at a time,
// caller i on client i mod clients, each caller one Eval after another.
func startChainEvals(stages, clients, callers int) (*system, error) {
	var st stack
	fail := func(err error) (*system, error) { st.stop(); return nil, err }
	ch, err := startChain(&st, stages)
	if err != nil {
		return fail(err)
	}
	cs, err := newClients(&st, clients, ch.first, client.SubAddress(ch.last))
	if err != nil {
		return fail(err)
	}
	move := func(ctx context.Context, payload []byte, n int) (time.Duration, error) {
		return split(n, callers, func(i, share int) error {
			c := cs[i%len(cs)]
			for j := range share {
				if _, err := c.Eval(ctx, ch.steps, payload); err != nil {
					return fmt.Errorf("caller %d, Eval %d of %d: %w", i, j+1, share, err)
				}
			}
			return nil
		})
	}
	return &system{move: move, stop: st.stop}, nil
}
