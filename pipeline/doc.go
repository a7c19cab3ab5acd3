// Package pipeline holds palm's serial components: the standalone Server of
// the original manual's introduction, and the Pipeline and Sink stages that
// chain components into streams.
//
// A Server has a name and functions registered by name; clients call them
// as `name.function`:
//
//	srv, err := pipeline.NewServer("my_server")
//	srv.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
//		srv.Logger().Warn("got a message")
//		return append([]byte("you sent me "), msg...), nil
//	})
//	err = srv.ListenAndServe(ctx, "127.0.0.1:5555")
//
// With Pipelined, a Server sends its results on instead of back: it
// publishes them under its own name, with the message's stage moved one
// on. A Pipeline subscribes to that, calls the function the message names
// at its stage, and sends the result to the client (or, Pipelined, on
// again); a Sink does the same with several components at once:
//
//	srv, err := pipeline.NewServer("my_server", pipeline.Pipelined())
//	p, err := pipeline.NewPipeline("my_pipeline", pipeline.Upstream{Address: "127.0.0.1:5555", Topic: "my_server"})
//	p.HandleFunc("foo", ...)
//	err = p.ListenAndServe(ctx, "127.0.0.1:5560")
//
//	c, err := client.New("my_server", "127.0.0.1:5555", client.SubAddress("127.0.0.1:5560"))
//	reply, err := c.Eval(ctx, client.Steps("my_server.foo", "my_pipeline.foo"), []byte("a message"))
//
// HandleStream replaces the topic rule (the original's handle_stream), for
// example to send even messages to one stage and odd ones to another.
//
// Every component serves one gRPC listener: a Server the palm.v1
// GatewayService (clients' messages), every component the PublisherService
// (what it sends on, by topic), the CacheService (its own key-value store),
// health and reflection. Inside, a component is a parts.Router with three
// parts: the way in (a gateway, or a subscriber to the upstreams), the
// functions and the replies.
//
// Nothing is dropped between components that are up: each subscriber has a
// bounded queue (SubscriberQueue), and a component whose subscriber cannot
// keep up waits for it, which slows the components before it down to the
// pace of the slowest. A stage re-subscribes by itself when its upstream
// restarts or the connection breaks; what was published while it was away
// is lost, and counted (Missed).
package pipeline
