// Command master is the first step of "Connecting a pipeline to a master":
// a master named server whose workers' results go on, under its name, to
// examples/master-pipeline/pipeline instead of back to the client. Run it
// first, then the pipeline and two workers (examples/master-pipeline/worker
// worker1, ... worker2), then examples/master-pipeline/client.
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

	server, err := master.New("server", master.Pipelined())
	if err != nil {
		log.Fatal(err)
	}
	if err := server.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559")); err != nil {
		log.Fatal(err)
	}
}
