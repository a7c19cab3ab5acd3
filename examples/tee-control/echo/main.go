// Command echo takes the odd messages of my_server
// (examples/tee-control/server) and only logs them: its function returns
// nothing, so it sends nothing on. Start it after the server and before the
// client.
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

	p, err := pipeline.NewPipeline("my_pipeline", pipeline.Upstream{Address: cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"), Topic: "odd"})
	if err != nil {
		log.Fatal(err)
	}
	p.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		p.Logger().Info("Echo: " + string(message))
		return nil, nil
	})
	if err := p.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_PIPELINE2"), "127.0.0.1:5570")); err != nil {
		log.Fatal(err)
	}
}
