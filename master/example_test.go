package master_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// A master and one worker: the client's messages go to the worker and its
// results come back to the client.
func ExampleMaster() {
	quiet := palm.WithLogger(hclog.NewNullLogger())
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	// The client may come before the worker: the master waits for one.
	m, _ := master.New("server", quiet, master.WaitForWorkers(5*time.Second))
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

// A hub after a server, as in the manual's "Connecting a hub to a server":
// the server's results go to the hub's worker, and the worker's back to the
// client, which takes its replies from the hub (SubAddress).
func ExampleHub() {
	quiet := palm.WithLogger(hclog.NewNullLogger())
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	srvLis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv, _ := pipeline.NewServer("server", quiet, pipeline.Pipelined())
	srv.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		return append([]byte("you sent me "), message...), nil
	})
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ctx, srvLis) }()

	hubLis, _ := net.Listen("tcp", "127.0.0.1:0")
	hub, _ := master.NewHub("hub", master.Upstream{Address: srvLis.Addr().String(), Topic: "server"}, quiet,
		master.WaitForWorkers(5*time.Second)) // the server's results may come before the worker
	go func() { served <- hub.Serve(ctx, hubLis) }()

	w, _ := worker.New("worker1", hubLis.Addr().String(), quiet)
	w.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		return append([]byte(w.Name()+" processed "), message...), nil
	})
	worked := make(chan error, 1)
	go func() { worked <- w.Run(ctx) }()
	for !hub.Subscribed() { // what the server publishes before this is lost
		time.Sleep(time.Millisecond)
	}

	c, _ := client.New("server", srvLis.Addr().String(), quiet, client.SubAddress(hubLis.Addr().String()))
	reply, err := c.Eval(ctx, client.Steps("server.foo", "hub.foo"), []byte("a message"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("Client got: %s\n", reply)

	c.Close()
	stop()
	<-worked
	<-served
	<-served
	// Output: Client got: worker1 processed you sent me a message
}
