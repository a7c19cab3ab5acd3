// Command server is the first step of "A pipelined message stream": a
// server named my_server whose results go on to the next step instead of
// back to the client. Run it first, then examples/pipeline/pipeline, then
// examples/pipeline/client.
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
