// Command master is the gather master logging at WARN and above: it logs
// when it changes the payload of the last result. Run it with the client of
// examples/cache and the worker of examples/logging.
package main

import (
	"cmp"
	"context"
	"iter"
	"log"
	"os"
	"os/signal"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/master"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var server *master.Master
	counter := 0
	scatter := func(message *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage] {
		return func(yield func(*palmv1.PalmMessage) bool) {
			for range 3 {
				if !yield(message) {
					return
				}
			}
		}
	}
	gather := func(message *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage] {
		return func(yield func(*palmv1.PalmMessage) bool) {
			counter++
			if counter == 30 {
				server.Logger().Error("Changing the payload of the message")
				yield(palm.ChangePayload(message, []byte("final message")))
			} else {
				yield(message)
			}
		}
	}
	server, err := master.New("server", master.Scatter(scatter), master.Gather(gather), palm.WithLogLevel(hclog.Warn))
	if err != nil {
		log.Fatal(err)
	}
	if err := server.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559")); err != nil {
		log.Fatal(err)
	}
}
