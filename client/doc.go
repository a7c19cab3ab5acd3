// Package client is palm's Client: it sends messages to the functions of a
// palm server (a Server, a Master, the first stage of a pipeline) and uses
// the server's cache, like the original PALM client.
//
// New takes the server's name and address and does no network I/O. Eval
// sends one message and returns its reply; Job sends a message per payload
// of a Go iterator and yields the replies as they come back, with an error
// for each message that failed; Get, Set, Delete and Keys use the server's
// cache, optionally under a Session name:
//
//	c, err := client.New("my_server", "127.0.0.1:5555")
//	if err != nil { ... }
//	defer c.Close()
//
//	reply, err := c.Eval(ctx, "my_server.foo", []byte("a message"))
//
//	for reply, err := range c.Job(ctx, "my_server.foo", client.Repeat([]byte("a message"), 10), client.Messages(10)) {
//		if err != nil { ... } // a *client.MessageError: that message failed, the job goes on
//		fmt.Printf("%s\n", reply)
//	}
//
//	key, err := c.Set(ctx, "", []byte("some data")) // the server chooses the key
//	data, err := c.Get(ctx, key)
//
// A message may go through several components, one step each: a pipeline,
// named by its steps (Steps). When the last step is not on the server the
// Client sends to, SubAddress names the component the replies come from:
//
//	c, err := client.New("my_server", "127.0.0.1:5555", client.SubAddress("127.0.0.1:5560"))
//	reply, err := c.Eval(ctx, client.Steps("my_server.foo", "my_pipeline.foo"), []byte("a message"))
//
// New does not connect; the first call does. A call made while the
// connection has never been ready fails at once, with an Unavailable
// error that names the address, the problem and its fix (nothing listens
// there; the server speaks TLS and the Client plaintext, or the reverse; a
// client certificate is missing or refused), rather than wait for its
// deadline. To start a Client before its server, as the original allows,
// give WaitForServer: the first calls wait for the server, bounded, and
// log "waiting for ADDRESS…". Once connected, a call waits for a server
// that restarts or a network that comes back, until its context ends.
//
// Errors are gRPC status errors (see status.Code) with a message for the
// person reading it; cache errors also match kv.ErrNotFound, kv.ErrInvalidKey,
// kv.ErrTooLarge and kv.ErrQuota with errors.Is.
package client
