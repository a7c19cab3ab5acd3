package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/pipeline"
)

// The introduction of the manual: a server named my_server with a function
// foo, and a client that calls it.
func ExampleServer() {
	quiet := palm.WithLogger(hclog.NewNullLogger()) // keep the logs out of the output

	srv, err := pipeline.NewServer("my_server", quiet)
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
		return append([]byte("you sent me "), msg...), nil
	})

	// Serve on a free loopback port until ctx ends; srv.ListenAndServe
	// does the same on an address of your choice.
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
	reply, err := cl.Eval(ctx, "my_server.foo", []byte("a message"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Client got: %s\n", reply)

	// Shut down: close the client, end the server's context and wait for
	// Serve to return.
	cl.Close()
	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output: Client got: you sent me a message
}

// A function that returns a nil payload sends no reply: here it only keeps
// the message in the server's cache. Eval then returns client.ErrNoReply.
func ExampleServer_HandleFunc() {
	quiet := palm.WithLogger(hclog.NewNullLogger())

	srv, err := pipeline.NewServer("my_server", quiet)
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleFunc("remember", func(ctx context.Context, msg []byte) ([]byte, error) {
		return nil, srv.Cache().Set(ctx, "last", msg)
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
	_, err = cl.Eval(ctx, "my_server.remember", []byte("a message"))
	fmt.Println("no reply:", errors.Is(err, client.ErrNoReply))
	last, err := cl.Get(ctx, "last")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cached: %s\n", last)

	cl.Close()
	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output:
	// no reply: true
	// cached: a message
}

// A pipeline of two steps, as in the manual's "A pipelined message stream":
// the server sends its results on to my_pipeline, which sends its own back
// to the client. The client sends to the server and takes its replies from
// the pipeline (SubAddress).
func ExamplePipeline() {
	quiet := palm.WithLogger(hclog.NewNullLogger())
	ctx, stop := context.WithCancel(context.Background())
	var served []chan error
	serve := func(s interface {
		Serve(context.Context, net.Listener) error
	}) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, lis) }()
		served = append(served, done)
		return lis.Addr().String()
	}

	srv, err := pipeline.NewServer("my_server", quiet, pipeline.Pipelined())
	if err != nil {
		log.Fatal(err)
	}
	srv.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
		return append([]byte("you sent me "), msg...), nil
	})
	first := serve(srv)

	p, err := pipeline.NewPipeline("my_pipeline", pipeline.Upstream{Address: first, Topic: "my_server"}, quiet)
	if err != nil {
		log.Fatal(err)
	}
	p.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
		return append([]byte("and I pipelined "), msg...), nil
	})
	last := serve(p)
	for p.Subscribed() == 0 { // what the server publishes before this is lost
		time.Sleep(time.Millisecond)
	}

	cl, err := client.New("my_server", first, quiet, client.SubAddress(last))
	if err != nil {
		log.Fatal(err)
	}
	reply, err := cl.Eval(ctx, client.Steps("my_server.foo", "my_pipeline.foo"), []byte("a message"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Client got: %s\n", reply)

	cl.Close()
	stop()
	for _, done := range served {
		if err := <-done; err != nil {
			log.Fatal(err)
		}
	}
	// Output: Client got: and I pipelined you sent me a message
}
