package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/reach"
)

// explain rewrites a failure to reach a component in terms of the flags
// that fix it; other errors come back unchanged.
func (c *common) explain(err error) error {
	var re *reach.Error
	if !errors.As(err, &re) {
		return err
	}
	e := *re
	e.Hint = c.hint(e.Problem, e.Address)
	return status.Error(codes.Unavailable, e.Error())
}

// run wraps a verb's RunE so that its failures to reach a component are
// explained.
func (c *common) run(f func(cmd *cobra.Command, args []string) error) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error { return c.explain(f(cmd, args)) }
}

// hint says how to fix p for the component at address, in flags.
func (c *common) hint(p reach.Problem, address string) string {
	flag := "--address (PALM_ADDRESS)"
	switch {
	case c.sub != "" && address == c.sub:
		flag = "--sub-address (PALM_SUB_ADDRESS)"
	case c.positional:
		flag = "the ADDRESS argument or --address"
	}
	waited := client.FirstConnectTimeout
	if c.wait > 0 {
		waited = c.wait
	}
	switch p {
	case reach.Refused:
		if c.wait > 0 {
			return fmt.Sprintf("it did not come up within %v (--wait); is a palm component meant to run there? %s sets the address", c.wait, flag)
		}
		return fmt.Sprintf("is a palm component running there? %s sets the address; --wait waits for the component to come up", flag)
	case reach.NoHost:
		return "check the host name in " + flag
	case reach.NoAnswer:
		return fmt.Sprintf("no connection within %v: is %s right, and reachable from here? --wait waits longer", waited, flag)
	case reach.WantsTLS:
		return "give --cacert with the CA that signed its certificate (or --insecure, for tests only)"
	case reach.NoTLS:
		return "talk to it in plaintext: drop --cacert, --cert, --key, --servername and --insecure (off this machine's loopback, give --plaintext)"
	case reach.CertRequired:
		return "give a client certificate with --cert and --key"
	case reach.ClientUntrusted:
		return "give, with --cert and --key, a certificate signed by a CA the component trusts"
	case reach.ServerUntrusted:
		return "give the CA that signed its certificate with --cacert, or with --servername the name it was issued for"
	case reach.NotGRPC:
		return "is it a palm component? check the port in " + flag
	}
	return ""
}

// checkReplies fails, before anything is sent, when the component at
// --address sends its results on to the next step (it is pipelined) and
// no --sub-address says where the replies come from: they would never
// come back. It asks the component's InfoService; a component that does
// not answer it (not palm, or its probes closed to this caller) is given
// the benefit of the doubt. It waits for the component as --wait says.
func (c *common) checkReplies(ctx context.Context, stderr io.Writer) error {
	if c.sub != "" {
		return nil
	}
	conn, err := c.conn(nil, stderr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, c.wait+client.FirstConnectTimeout)
	defer cancel()
	resp, err := palmv1.NewInfoServiceClient(conn).Info(ctx, &palmv1.InfoRequest{})
	var re *reach.Error
	switch {
	case errors.As(err, &re):
		return err
	case err != nil:
		return nil // the call itself will say what is wrong
	case resp.GetPipelined():
		return status.Errorf(codes.FailedPrecondition,
			"%s at %s is pipelined: it sends its results on to the next step, not back here, so no reply would come; give --sub-address with the address of the last stage of the pipeline, whose results come to you",
			resp.GetName(), c.address)
	}
	return nil
}
