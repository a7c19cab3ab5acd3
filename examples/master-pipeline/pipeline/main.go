// Command pipeline takes what the master named server
// (examples/master-pipeline/master) sends on and sends its result to the
// client (examples/master-pipeline/client), which subscribes to it. Start it
// after the master and before the client.
package main

import (
	"cmp"
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/gopalm/palm/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	p, err := pipeline.NewPipeline("my_pipeline", pipeline.Upstream{Address: cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559"), Topic: "server"})
	if err != nil {
		log.Fatal(err)
	}
	p.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		p.Logger().Info("Got a message")
		return append([]byte("and I pipelined "), message...), nil
	})
	if err := p.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_PIPELINE"), "127.0.0.1:5560")); err != nil {
		log.Fatal(err)
	}
}
