// Package rawecho is the baseline palm's benchmarks measure against: a
// GatewayService written directly on grpc-go, with no router, no checks and
// no window, and a client that streams through it. The benchmarks in test/
// and the comparison in bench/ both use it, so that their raw rows are one
// and the same thing.
package rawecho

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// Ids as long as the ones palm's client puts in each message (32
// characters), so that the raw stream carries the same bytes on the wire.
var (
	Client   = strings.Repeat("c", 32)
	Pipeline = strings.Repeat("p", 32)
)

// Server echoes: Eval returns its message, Stream sends back each request's
// messages as soon as it has them. Register it with
// palmv1.RegisterGatewayServiceServer.
type Server struct {
	palmv1.UnimplementedGatewayServiceServer
}

// Eval returns the message it was given.
func (Server) Eval(_ context.Context, req *palmv1.EvalRequest) (*palmv1.EvalResponse, error) {
	return &palmv1.EvalResponse{Messages: []*palmv1.PalmMessage{req.GetMessage()}}, nil
}

// Stream sends back each request's messages until the client half-closes.
func (Server) Stream(s palmv1.GatewayService_StreamServer) error {
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&palmv1.StreamResponse{Messages: req.Messages}); err != nil {
			return err
		}
	}
}

// Stream echoes n messages of payload for function over one stream of raw,
// pack per Send, and returns how long it took from the first send to the
// last reply.
func Stream(ctx context.Context, raw palmv1.GatewayServiceClient, function string, payload []byte, n, pack int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := raw.Stream(ctx)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	go func() {
		batch := make([]*palmv1.PalmMessage, 0, pack)
		for i := range n {
			batch = append(batch, &palmv1.PalmMessage{Client: Client, Pipeline: Pipeline, Function: function, Payload: payload, Sequence: uint64(i + 1)})
			if len(batch) == pack || i == n-1 {
				if st.Send(&palmv1.StreamRequest{Messages: batch}) != nil {
					return
				}
				batch = make([]*palmv1.PalmMessage, 0, pack)
			}
		}
		st.CloseSend()
	}()
	for got := 0; got < n; {
		resp, err := st.Recv()
		if err != nil {
			return 0, fmt.Errorf("raw stream after %d of %d replies: %w", got, n, err)
		}
		got += len(resp.Messages)
	}
	return time.Since(t0), nil
}
