package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
)

func newEval(c *common, stdin io.Reader) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "eval FUNCTION [PAYLOAD]",
		Short: "Call a function on a running server and print the reply",
		Long: `eval sends one message to the server at --address and prints the reply's
payload followed by a newline. FUNCTION is server.function, or several
such steps (quote them, or give them as separate arguments to job); with
--sub-address the reply comes from the last stage of the pipeline. The payload is PAYLOAD, or
standard input when PAYLOAD is omitted or is "-".

eval fails at once when nothing answers at --address, saying why (with
--wait, it waits for the server), and, before sending, when the server is
pipelined and no --sub-address says where its reply would come from.

A failure of the function is printed with its gRPC code, and eval exits 1.`,
		Example: `  palm eval my_server.foo 'a message'
  echo -n 'a message' | palm eval --address 10.0.0.5:5555 my_server.foo`,
		Args: cobra.RangeArgs(1, 2),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			var payload []byte
			if len(args) == 2 && args[1] != "-" {
				payload = []byte(args[1])
			} else {
				b, err := io.ReadAll(stdin)
				if err != nil {
					return err
				}
				payload = b
			}
			server := c.server
			if server == "" {
				server, _, _ = strings.Cut(args[0], ".")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cl, err := c.client(server, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := c.checkReplies(ctx, cmd.ErrOrStderr()); err != nil {
				return err
			}
			reply, err := cl.Eval(ctx, args[0], payload)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", reply)
			return err
		}),
	}
	c.clientFlags(cmd.Flags())
	c.subFlag(cmd.Flags())
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the reply, including for the server to come up with --wait")
	return cmd
}

// client makes a client for the named server from the common flags; it
// logs to stderr at --log-level.
func (c *common) client(server string, stderr io.Writer) (*client.Client, error) {
	if server == "" {
		server = "palm"
	}
	logger, err := c.logger(stderr)
	if err != nil {
		return nil, err
	}
	shared, err := c.security.options(c.address)
	if err != nil {
		return nil, err
	}
	opts := append(convert(shared, func(o palm.Option) client.Option { return o }), palm.WithLogger(logger))
	if c.session != "" {
		opts = append(opts, client.Session(c.session))
	}
	if c.sub != "" {
		opts = append(opts, client.SubAddress(c.sub))
	}
	if c.wait > 0 {
		opts = append(opts, client.WaitForServer(c.wait))
	}
	return client.New(server, c.address, opts...)
}

// logger returns a logger writing to w at --log-level, or a usage error
// for an unknown level.
func (c *common) logger(w io.Writer) (hclog.Logger, error) {
	level := hclog.LevelFromString(c.logLevel)
	if level == hclog.NoLevel {
		return nil, usageError{fmt.Errorf("unknown log level %q", c.logLevel)}
	}
	return hclog.New(&hclog.LoggerOptions{Output: w, Level: level, IndependentLevels: true}), nil
}
