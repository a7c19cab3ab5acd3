// Package palm is PALM in Go: a framework for clusters of backend components
// (servers, masters with workers, pipeline stages, sinks, hubs and the clients
// that feed them) that pass a stream of PalmMessages to each other over gRPC.
//
// The components live in their own packages:
//
//   - pipeline: the standalone Server, and the Pipeline and Sink stages
//   - master: the Master and the Hub, which spread messages over workers
//   - worker: the Worker of a master or a hub
//   - client: the Client that sends messages and uses a server's cache
//   - kv: the cache every server carries, as a Store interface and a gRPC service
//   - parts: the router core servers are composed from
//
// This package holds what they share: the Option type every constructor
// takes beside its own options (logging, limits, keepalive, TLS from files
// that reload, tokens and identities with per-service permissions,
// Prometheus metrics) and the Handler type user functions implement.
//
// A server with one function, and a client calling it:
//
//	srv, _ := pipeline.NewServer("my_server")
//	srv.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
//		return append([]byte("you sent me "), msg...), nil
//	})
//	go srv.ListenAndServe(ctx, "127.0.0.1:5555")
//
//	c, _ := client.New("my_server", "127.0.0.1:5555")
//	reply, err := c.Eval(ctx, "my_server.foo", []byte("a message"))
package palm
