// Command echo is the branch of the tee that only logs: it takes the same
// messages from my_server (examples/tee/server) as examples/tee/pipeline,
// and its function returns nothing, so it sends nothing on. Start it after
// the server and before the client.
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
	p.HandleFunc("foo", func(context.Context, []byte) ([]byte, error) {
		p.Logger().Warn("Just echo, nothing else")
		return nil, nil
	})
	if err := p.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_PIPELINE2"), "127.0.0.1:5570")); err != nil {
		log.Fatal(err)
	}
}
