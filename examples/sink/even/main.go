// Command even takes the even messages of my_server (examples/sink/server)
// and sends its results on, under its name, to the sink (examples/sink/sink).
// Start it after the server and before the sink.
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

	p, err := pipeline.NewPipeline("my_pipeline",
		pipeline.Upstream{Address: cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"), Topic: "even"},
		pipeline.Pipelined())
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
