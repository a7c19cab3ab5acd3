// Command worker serves foo, which adds what the client left in the
// master's cache under "cached"; its name is its first argument. The
// scatter, gather and logging examples use it too.
package main

import (
	"cmp"
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/gopalm/palm/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	w, err := worker.New(os.Args[1], cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559"))
	if err != nil {
		log.Fatal(err)
	}
	w.HandleFunc("foo", func(ctx context.Context, message []byte) ([]byte, error) {
		data, err := w.Get(ctx, "cached")
		if err != nil {
			return nil, err
		}
		return append([]byte(w.Name()+string(data)), message...), nil
	})
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
