package compose_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/parts"
)

// The manual's master built from its components: the gateway (Pull) hands
// the clients' messages to the dispatcher (WorkerPush), whose workers'
// results go to Pub, back to each client; the Cache runs beside them.
func Example_master() {
	server, err := compose.New("server")
	if err != nil {
		log.Fatal(err)
	}
	server.Inbound("Pull", parts.NewGateway(parts.GatewayConfig{}), "WorkerPush")
	server.Outbound("WorkerPush", parts.NewDispatcher(parts.DispatcherConfig{}), "Pub")
	server.Outbound("Pub", &parts.Replies{}, "")
	server.Bypass("Cache", &parts.Cache{})
	server.PresetCache(map[string][]byte{"name": []byte("server")})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer stop()
	fmt.Println(server.Serve(ctx, lis))
	// Output: <nil>
}

// upper is a part of one's own: an outbound part that answers each
// message with its payload in capitals, and marks it done.
type upper struct{}

func (upper) Run(ctx context.Context, link *parts.Link) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-link.Inbox():
			reply := palm.ChangePayload(e.Msg, bytes.ToUpper(e.Msg.GetPayload()))
			e.Msg, e.Done = reply, true
			if err := link.Send(ctx, e); err != nil {
				return nil
			}
		}
	}
}

// Describe shows in InfoService (palm info) what the part does.
func (upper) Describe(d *parts.Description) { d.Note("does", "capitals") }

// A component with a part of one's own between palm's gateway and Pub.
func Example_customPart() {
	shout, err := compose.New("shout")
	if err != nil {
		log.Fatal(err)
	}
	shout.Inbound(compose.Pull, parts.NewGateway(parts.GatewayConfig{}), "Upper")
	shout.Outbound("Upper", upper{}, compose.Pub)
	shout.Outbound(compose.Pub, &parts.Replies{}, "")

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- shout.Serve(ctx, lis) }()

	c, err := client.New("shout", lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Eval(ctx, "shout.anything", []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	stop()
	fmt.Println(<-served)
	// Output:
	// HELLO
	// <nil>
}
