package test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

// tapped is a connection that keeps a copy of what it writes.
type tapped struct {
	net.Conn
	mu  *sync.Mutex
	out *bytes.Buffer
}

func (c tapped) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// tapListener copies what the server writes on each connection it accepts.
type tapListener struct {
	net.Listener
	mu   sync.Mutex
	outs []*bytes.Buffer
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &bytes.Buffer{}
	l.outs = append(l.outs, b)
	return tapped{c, &l.mu, b}, nil
}

// pings counts the PING frames (not their acknowledgements) in what one
// side of an HTTP/2 connection wrote.
func pings(t *testing.T, written []byte, client bool) int {
	t.Helper()
	if client {
		if !bytes.HasPrefix(written, []byte(http2.ClientPreface)) {
			t.Fatalf("the client's bytes do not start with the HTTP/2 preface")
		}
		written = written[len(http2.ClientPreface):]
	}
	fr := http2.NewFramer(io.Discard, bytes.NewReader(written))
	fr.SetMaxReadFrameSize(16 << 20)
	n := 0
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n
		}
		if err != nil {
			t.Fatalf("reading the frames written: %v", err)
		}
		if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
			n++
		}
	}
}

// Evals through a master cost no frames beyond their messages: the flow
// control windows are static by default, so no side follows each burst of
// data it receives with a PING to estimate the bandwidth (gRPC's dynamic
// windows did, on every round trip of a lone message). WithWindowSize(0)
// brings the dynamic windows back, and with them the PINGs, which shows
// the count can tell the two apart.
func TestRoundTripsWithoutFlowControlPings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  palm.Option // nil: the default
		dynamic bool
	}{
		{"default", nil, false},
		{"WithWindowSize(0)", palm.WithWindowSize(0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			quiet := palm.WithLogger(hclog.NewNullLogger())
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			lis := &tapListener{Listener: raw}
			m, err := master.New("server", quiet, tc.window)
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- m.Serve(ctx, lis) }()
			w, err := worker.New("w", raw.Addr().String(), quiet, tc.window)
			if err != nil {
				t.Fatal(err)
			}
			w.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
			wctx, wstop := context.WithCancel(ctx)
			ran := make(chan error, 1)
			go func() { ran <- w.Run(wctx) }()

			var mu sync.Mutex
			var sent bytes.Buffer
			dial := palm.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				return tapped{c, &mu, &sent}, nil
			}))
			c, err := client.New("server", raw.Addr().String(), quiet, tc.window, dial)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := 0; m.Workers() < 1; i++ {
				if i > 3000 {
					t.Fatal("the worker did not connect")
				}
				time.Sleep(time.Millisecond)
			}
			const evals = 50
			for i := range evals {
				if got, err := c.Eval(ctx, "server.echo", []byte("ping")); err != nil || string(got) != "ping" {
					t.Fatalf("Eval %d: %q, %v", i, got, err)
				}
			}
			mu.Lock()
			fromClient := pings(t, sent.Bytes(), true)
			mu.Unlock()
			lis.mu.Lock()
			fromServer := 0
			for _, b := range lis.outs {
				fromServer += pings(t, b.Bytes(), false)
			}
			lis.mu.Unlock()
			t.Logf("%d Evals: %d PINGs from the client, %d from the master", evals, fromClient, fromServer)
			if !tc.dynamic && fromClient+fromServer > 0 {
				t.Errorf("%d PINGs from the client and %d from the master in %d Evals; static windows send none", fromClient, fromServer, evals)
			}
			if tc.dynamic && fromClient+fromServer < evals/2 {
				t.Errorf("only %d PINGs in %d Evals with dynamic windows: the count does not see them", fromClient+fromServer, evals)
			}
			wstop()
			if err := <-ran; err != nil {
				t.Errorf("worker: %v", err)
			}
			cancel()
			if err := <-served; err != nil {
				t.Errorf("master: %v", err)
			}
		})
	}
}
