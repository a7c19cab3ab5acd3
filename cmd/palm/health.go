package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func newHealth(c *common) *cobra.Command {
	var (
		timeout time.Duration
		service string
	)
	cmd := &cobra.Command{
		Use:   "health [ADDRESS]",
		Short: "Check that a component serves",
		Long: `health asks the component at ADDRESS (default: --address) for its health
(grpc.health.v1) and prints SERVING, NOT_SERVING (it is stopping, or does not
serve --service) or the reason it could not be asked. It exits 0 when the
component serves, 1 otherwise: at once when nothing answers at ADDRESS,
saying why (with --wait, it waits for the component to come up). A master or a server reports NOT_SERVING as
soon as it starts to stop, while it finishes the messages it holds.`,
		Example: `  palm health 127.0.0.1:5559
  palm health --service palm.v1.DispatchService --cacert ca.pem 10.0.0.5:5559`,
		Args: cobra.MaximumNArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			conn, err := c.conn(args, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.GetStatus())
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return errSilent
			}
			return nil
		}),
	}
	c.positional = true
	c.talkFlags(cmd.Flags(), "127.0.0.1:5555", "address of the component, when ADDRESS is not given")
	c.waitFlag(cmd.Flags())
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the answer, including for the component to come up with --wait")
	cmd.Flags().StringVar(&service, "service", "", "the service to ask about, such as palm.v1.GatewayService (default: the component as a whole)")
	return cmd
}
