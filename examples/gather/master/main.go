// Command master scatters each message three times and, in gather, turns the
// thirtieth result into "final message". Run it with the worker and the
// client of examples/cache.
package main

import (
	"cmp"
	"context"
	"iter"
	"log"
	"os"
	"os/signal"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/master"
)

func scatter(message *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage] {
	return func(yield func(*palmv1.PalmMessage) bool) {
		for range 3 {
			if !yield(message) {
				return
			}
		}
	}
}

var counter int // gather is called for one result at a time

func gather(message *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage] {
	return func(yield func(*palmv1.PalmMessage) bool) {
		counter++
		if counter == 30 {
			yield(palm.ChangePayload(message, []byte("final message")))
		} else {
			yield(message)
		}
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	server, err := master.New("server", master.Scatter(scatter), master.Gather(gather))
	if err != nil {
		log.Fatal(err)
	}
	if err := server.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559")); err != nil {
		log.Fatal(err)
	}
}
