package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/pipeline"
)

func newDemo(c *common) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the introduction's server and client in one process",
		Long: `demo runs the standalone server of the introduction, my_server with its
function foo, on a free port on the loopback interface, calls my_server.foo
from a client in the same process, prints the reply and stops. Nothing to
set up; the server's log goes to standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), c, cmd)
		},
	}
}

func demo(ctx context.Context, c *common, cmd *cobra.Command) error {
	logger, err := c.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	srv, err := pipeline.NewServer("my_server", palm.WithLogger(logger))
	if err != nil {
		return err
	}
	srv.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
		srv.Logger().Warn("Got a message")
		return append([]byte("you sent me "), message...), nil
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	reply, evalErr := func() ([]byte, error) {
		cl, err := client.New("my_server", lis.Addr().String(), palm.WithLogger(logger))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		return cl.Eval(ctx, "my_server.foo", []byte("a message"))
	}()
	stop()
	if err := <-served; err != nil {
		return err
	}
	if evalErr != nil {
		return evalErr
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Client got: %s\n", reply)
	return nil
}
