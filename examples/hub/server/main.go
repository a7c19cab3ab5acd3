// Command server is the first step of "Connecting a hub to a server": a
// server named server whose results go on, under its name, to the hub
// (examples/hub/hub). Run it first, then the hub and two workers
// (examples/hub/worker worker1, ... worker2), then examples/hub/client.
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

	srv, err := pipeline.NewServer("server", pipeline.Pipelined(), palm.WithLogLevel(hclog.Debug))
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
