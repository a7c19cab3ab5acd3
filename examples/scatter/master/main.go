// Command master sends each message to the workers three times (scatter).
// Run it with the worker and the client of examples/cache: ten messages
// come back as thirty replies.
package main

import (
	"cmp"
	"context"
	"iter"
	"log"
	"os"
	"os/signal"

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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	server, err := master.New("server", master.Scatter(scatter))
	if err != nil {
		log.Fatal(err)
	}
	if err := server.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559")); err != nil {
		log.Fatal(err)
	}
}
