// Command master-from-parts is the master of "Building a master server from
// its components": the parallel example's master, composed from parts with
// the low-level API. Use it with the parallel example's workers and client.
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
	address := cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559")

	server, err := compose.New("server")
	if err != nil {
		log.Fatal(err)
	}
	server.Inbound("Pull", parts.NewGateway(parts.GatewayConfig{}), "WorkerPush")
	server.Outbound("WorkerPush", parts.NewDispatcher(parts.DispatcherConfig{}), "Pub")
	server.Outbound("Pub", &parts.Replies{}, "")
	server.Bypass("Cache", &parts.Cache{})
	server.PresetCache(map[string][]byte{"name": []byte("server"), "address": []byte(address)})

	if err := server.ListenAndServe(ctx, address); err != nil {
		log.Fatal(err)
	}
}
