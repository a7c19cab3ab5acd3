// Command worker serves foo for the hub of "Connecting a hub to a server"
// (examples/hub/hub); its name is its first argument: run it as
// `worker worker1` and `worker worker2`.
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

	w, err := worker.New(os.Args[1], cmp.Or(os.Getenv("PALM_HUB"), "127.0.0.1:5561"))
	if err != nil {
		log.Fatal(err)
	}
	w.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		w.Logger().Info("Processed")
		return append([]byte(w.Name()+" processed "), message...), nil
	})
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
