// Command sink is the last step of "A pipelined message stream forming a
// tee and controls the stream of messages with a sink": it takes the
// results of both pipelines, examples/sink/even and examples/sink/odd, both
// named my_pipeline, and sends its own to the client (examples/sink/client),
// which subscribes to it. Start it after the pipelines and before the
// client.
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

	sink, err := pipeline.NewSink("my_sink", []pipeline.Upstream{
		{Address: cmp.Or(os.Getenv("PALM_PIPELINE"), "127.0.0.1:5560"), Topic: "my_pipeline"},
		{Address: cmp.Or(os.Getenv("PALM_PIPELINE2"), "127.0.0.1:5570"), Topic: "my_pipeline"},
	}, palm.WithLogLevel(hclog.Debug))
	if err != nil {
		log.Fatal(err)
	}
	sink.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		sink.Logger().Warn("Got a message")
		return append([]byte("and gathered "), message...), nil
	})
	if err := sink.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_SINK"), "127.0.0.1:5580")); err != nil {
		log.Fatal(err)
	}
}
