// Command server is the introduction's server with a bug in foo: the panic
// is logged with its stack trace and the server keeps on serving.
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

	srv, err := pipeline.NewServer("my_server")
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		srv.Logger().Warn("Got a message")
		var x map[string]int // never made: the bug
		x["calls"]++
		return append([]byte("you sent me "), message...), nil
	})
	srv.HandleFunc("bar", func(_ context.Context, message []byte) ([]byte, error) {
		return append([]byte("you sent me "), message...), nil
	})
	if err := srv.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555")); err != nil {
		log.Fatal(err)
	}
}
