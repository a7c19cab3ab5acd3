// Command worker serves function for the HTTP gateway's master; its name is
// its first argument.
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
	w.HandleFunc("function", func(context.Context, []byte) ([]byte, error) {
		return []byte("acknowledged"), nil
	})
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
