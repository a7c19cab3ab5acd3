// Command server is the first step of "A pipelined message stream forming a
// tee": my_server sends its results on under its name, and both
// examples/tee/pipeline and examples/tee/echo take them. Run it first, then
// the two pipelines, then examples/tee/client.
package main

import (
	"cmp"
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	srv, err := pipeline.NewServer("my_server", pipeline.Pipelined(), palm.WithLogLevel(hclog.Debug))
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		srv.Logger().Warn("Got a message")
		return append([]byte("you sent me "), message...), nil
	})
	if err := srv.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555")); err != nil {
		log.Fatal(err)
	}
}
