package master_test

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

// A master and one worker: the client's messages go to the worker and its
// results come back to the client.
func ExampleMaster() {
	quiet := palm.WithLogger(hclog.NewNullLogger())
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	m, _ := master.New("server", quiet)
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, lis) }()

	w, _ := worker.New("worker1", lis.Addr().String(), quiet)
	w.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		return append([]byte(w.Name()+" processed "), message...), nil
	})
	worked := make(chan error, 1)
	go func() { worked <- w.Run(ctx) }()

	c, _ := client.New("server", lis.Addr().String(), quiet)
	var replies []string
	for reply, err := range c.Job(ctx, "server.foo", client.Repeat([]byte("a message"), 3)) {
		if err != nil {
			fmt.Println(err)
			return
		}
		replies = append(replies, string(reply))
	}
	fmt.Println(strings.Join(replies, "\n"))

	c.Close()
	stop()
	<-worked
	<-served
	// Output:
	// worker1 processed a message
	// worker1 processed a message
	// worker1 processed a message
}
