// Command pipeline is the second step of "A pipelined message stream": it
// takes what my_server (examples/pipeline/server) sends on and sends its
// own result to the client (examples/pipeline/client), which subscribes to
// it. Start it after the server and before the client.
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

	p, err := pipeline.NewPipeline("my_pipeline",
		pipeline.Upstream{Address: cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"), Topic: "my_server"},
		palm.WithLogLevel(hclog.Debug))
	if err != nil {
		log.Fatal(err)
	}
	p.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		p.Logger().Warn("Got a message")
		return append([]byte("and I pipelined "), message...), nil
	})
	if err := p.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_PIPELINE"), "127.0.0.1:5560")); err != nil {
		log.Fatal(err)
	}
}
