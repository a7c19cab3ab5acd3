// Package pipeline holds palm's serial servers: the standalone Server of the
// original manual's introduction (and, as palm grows, the Pipeline and Sink
// stages that chain servers into streams).
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
// One gRPC listener serves the palm.v1 GatewayService (clients' messages),
// the CacheService (the server's own key-value store), health and
// reflection. Inside, the server is a parts.Router with three parts: the
// gateway, the functions and the replies.
package pipeline
