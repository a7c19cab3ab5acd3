// Command master is the master of "Turning a master into a web server with
// the HTTP gateway": a master composed from parts whose clients are HTTP
// clients. GET /function on localhost:8888 sends the body to the workers'
// function; the reply is the response's body.
package main

import (
	"cmp"
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/parts"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	server, err := compose.New("server")
	if err != nil {
		log.Fatal(err)
	}
	web, err := parts.NewHTTPGateway(parts.HTTPGatewayConfig{Address: cmp.Or(os.Getenv("PALM_HTTP"), "localhost:8888")})
	if err != nil {
		log.Fatal(err)
	}
	server.Inbound("HttpGateway", web, "WorkerPush")
	server.Outbound("WorkerPush", parts.NewDispatcher(parts.DispatcherConfig{}), "Pub")
	server.Outbound("Pub", &parts.Replies{}, "")
	server.Bypass("Cache", &parts.Cache{})
	server.PresetCache(map[string][]byte{"name": []byte("server")})

	if err := server.ListenAndServe(ctx, cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559")); err != nil {
		log.Fatal(err)
	}
}
