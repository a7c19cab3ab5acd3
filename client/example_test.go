package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/pipeline"
)

func ExampleRepeat() {
	for p := range client.Repeat([]byte("a message"), 3) {
		fmt.Printf("%s\n", p)
	}
	// Output:
	// a message
	// a message
	// a message
}

// Job sends many messages on one stream and yields the replies as they
// come back, like the original client's job.
func ExampleClient_Job() {
	quiet := palm.WithLogger(hclog.NewNullLogger()) // keep the logs out of the output

	// A server to talk to: my_server with its function foo, on a free
	// loopback port until ctx ends.
	srv, err := pipeline.NewServer("my_server", quiet)
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
		return append([]byte("you sent me "), msg...), nil
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	cl, err := client.New("my_server", lis.Addr().String(), quiet)
	if err != nil {
		log.Fatal(err)
	}
	n := 0
	var last []byte
	for reply, err := range cl.Job(ctx, "my_server.foo", client.Repeat([]byte("a message"), 10)) {
		if err != nil {
			log.Fatal(err)
		}
		n++
		last = reply
	}
	fmt.Printf("%d replies, the last: %s\n", n, last)

	cl.Close()
	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output: 10 replies, the last: you sent me a message
}

// Every server has a key-value cache; Set, Get, Delete and Keys use it.
func ExampleClient_Set() {
	quiet := palm.WithLogger(hclog.NewNullLogger())

	srv, err := pipeline.NewServer("my_server", quiet)
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	cl, err := client.New("my_server", lis.Addr().String(), quiet)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := cl.Set(ctx, "greeting", []byte("hello")); err != nil {
		log.Fatal(err)
	}
	v, err := cl.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("greeting: %s\n", v)

	_, err = cl.Get(ctx, "missing")
	fmt.Println("missing is not found:", errors.Is(err, kv.ErrNotFound))

	cl.Close()
	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output:
	// greeting: hello
	// missing is not found: true
}
