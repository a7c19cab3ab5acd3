// Command server is the first step of "A pipelined message stream forming a
// tee and controls the stream of messages": its handle_stream hook sends
// its results on under the topics even and odd in turn, to
// examples/tee-control/pipeline and examples/tee-control/echo. Run it first,
// then the two pipelines, then examples/tee-control/client.
package main

import (
	"cmp"
	"context"
	"log"
	"os"
	"os/signal"
	"sync"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var srv *pipeline.Server
	var mu sync.Mutex
	counter := 0
	handleStream := func(message *palmv1.PalmMessage) (string, *palmv1.PalmMessage) {
		mu.Lock()
		defer mu.Unlock()
		topic := "odd"
		if counter%2 == 0 { // if message is even
			srv.Logger().Info("Even")
			topic = "even"
		} else {
			srv.Logger().Info("Odd")
		}
		message.Stage++ // remember to move the stage on
		counter++
		return topic, message
	}
	srv, err := pipeline.NewServer("my_server", pipeline.Pipelined(), pipeline.HandleStream(handleStream))
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		srv.Logger().Info("Got a message")
		return append([]byte("you sent me "), message...), nil
	})
	if err := srv.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555")); err != nil {
		log.Fatal(err)
	}
}
