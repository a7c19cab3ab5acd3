// Command worker is the cache example's worker that logs, at INFO, every
// tenth message it processes; its name is its first argument.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"

	"github.com/gopalm/palm/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	w, err := worker.New(os.Args[1], cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559"))
	if err != nil {
		log.Fatal(err)
	}
	var ncalls atomic.Int64 // functions run concurrently
	w.HandleFunc("foo", func(ctx context.Context, message []byte) ([]byte, error) {
		if n := ncalls.Add(1); n%10 == 0 {
			w.Logger().Info(fmt.Sprintf("Processed %d messages", n))
		}
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
