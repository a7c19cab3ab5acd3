// Command hub is a master in the middle of a pipeline: it takes what the
// server (examples/hub/server) sends on, hands it to its workers
// (examples/hub/worker) and sends their results to the client
// (examples/hub/client), which subscribes to it. Start it after the server
// and before the workers and the client.
package main

import (
	"cmp"
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/gopalm/palm/master"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	hub, err := master.NewHub("hub", master.Upstream{Address: cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"), Topic: "server"})
	if err != nil {
		log.Fatal(err)
	}
	if err := hub.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_HUB"), "127.0.0.1:5561")); err != nil {
		log.Fatal(err)
	}
}
