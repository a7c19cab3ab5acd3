package client

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/gopalm/palm/internal/reach"
)

// FirstConnectTimeout bounds how long a call waits for a connection that
// has never been ready to be made, when WaitForServer is not given: an
// address where connection attempts go unanswered (a firewall that drops
// them) fails after it rather than at the call's deadline.
const FirstConnectTimeout = 10 * time.Second

// WaitForServer makes a Client's first calls wait up to d for the server
// to come up, rather than fail at once when nothing answers: until the
// connection has been ready once, each call waits for it, at most d and
// at most until its context ends, logging "waiting for ADDRESS…" at Info
// when the first attempt fails. d must be positive. It applies to the
// SubAddress connection too.
//
// Default: a call made while the connection has never been ready fails at
// once with Unavailable when the connection attempt fails (nothing
// listens, TLS on one side and plaintext on the other, a missing or
// refused client certificate), as an error that names the problem and
// its fix; an attempt that goes unanswered fails after
// FirstConnectTimeout. Once the connection has been ready, every call
// waits for it to come back whatever this option says (a server that
// restarts during a Job loses nothing), until the call's context ends.
func WaitForServer(d time.Duration) Option {
	return option{Setting: func(s *settings) { s.wait, s.hasWait = d, true }}
}

// reconnect paces gRPC's attempts to make a connection again: a server
// that comes up, or comes back, is found within MaxDelay.
var reconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
	MinConnectTimeout: 20 * time.Second,
})

// hint says how to fix p, in terms of the client's options; waited is
// how long the call waited for the connection.
func hint(wait time.Duration) func(reach.Problem, time.Duration) string {
	return func(p reach.Problem, waited time.Duration) string {
		switch p {
		case reach.Refused:
			if wait > 0 {
				return "it did not come up within " + waited.String() + " (client.WaitForServer)"
			}
			return "is the server running, at that address? client.WaitForServer waits for it to come up"
		case reach.NoHost:
			return "check the address's host name"
		case reach.NoAnswer:
			return "no connection within " + waited.String() + "; is the address right, and reachable from here?"
		case reach.WantsTLS:
			return "dial it with TLS (palm.WithTLS)"
		case reach.NoTLS:
			return "dial it without palm.WithTLS"
		case reach.CertRequired:
			return "give a client certificate in palm.WithTLS (palm.TLSFiles Cert and Key)"
		case reach.ClientUntrusted:
			return "give a client certificate signed by a CA the server trusts"
		case reach.ServerUntrusted:
			return "trust the CA that signed it (palm.TLSFiles CACert), or set the name it was issued for (ServerName)"
		case reach.NotGRPC:
			return "is it a palm component?"
		}
		return ""
	}
}
