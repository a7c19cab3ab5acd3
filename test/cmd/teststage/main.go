//go:build unix

// Command teststage is the pipeline stage process of palm's end-to-end loss
// tests (test/loss_test.go): a real OS process that a test can stop with
// SIGSTOP and kill while it holds a subscription.
//
// It subscribes to --topic at --from and serves one function, foo, which
// answers its payload unchanged. It listens on a free port of 127.0.0.1 and
// prints "listening on ADDRESS" on standard output once it serves. SIGINT or
// SIGTERM, or the end of standard input with --watch-stdin, stops it.
//
//	teststage --name last --from 127.0.0.1:5559 --topic server
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/test/cmd/internal/lifetime"
)

func main() {
	name := flag.String("name", "last", "the stage's name")
	from := flag.String("from", "127.0.0.1:5559", "the address of the component it subscribes to")
	topic := flag.String("topic", "server", "the topic it subscribes to there")
	watchStdin := flag.Bool("watch-stdin", false, "stop gracefully when standard input closes")
	flag.Parse()

	ctx, stop := lifetime.Context(*watchStdin)
	defer stop()
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info})
	p, err := pipeline.NewPipeline(*name, pipeline.Upstream{Address: *from, Topic: *topic}, palm.WithLogger(logger))
	if err != nil {
		fmt.Fprintln(os.Stderr, "teststage:", err)
		os.Exit(2)
	}
	p.HandleFunc("foo", func(_ context.Context, payload []byte) ([]byte, error) { return payload, nil })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "teststage:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", lis.Addr())
	if err := p.Serve(ctx, lis); err != nil {
		fmt.Fprintln(os.Stderr, "teststage:", err)
		os.Exit(1)
	}
}
