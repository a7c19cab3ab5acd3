package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

func newInfo(c *common) *cobra.Command {
	var (
		timeout time.Duration
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "info [ADDRESS]",
		Short: "Describe a running component",
		Long: `info asks the component at ADDRESS (default: --address) what it is (its
name and kind), what it serves (services and functions), who is connected
(a master's or hub's workers), what it subscribes to, the parts it is
composed of, and its counters:
messages in and out, function errors, tasks queued and in flight,
subscriptions, cache keys. --json prints the palm.v1.InfoResponse as JSON.`,
		Example: `  palm info 127.0.0.1:5559
  palm info --json --cacert ca.pem 10.0.0.5:5559`,
		Args: cobra.MaximumNArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			conn, err := c.conn(args, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			resp, err := palmv1.NewInfoServiceClient(conn).Info(ctx, &palmv1.InfoRequest{}, grpc.WaitForReady(true))
			if err != nil {
				return err
			}
			if asJSON {
				b, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			}
			printInfo(cmd, resp)
			return nil
		}),
	}
	c.positional = true
	c.talkFlags(cmd.Flags(), "127.0.0.1:5555", "address of the component, when ADDRESS is not given")
	c.waitFlag(cmd.Flags())
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the answer, including for the component to come up with --wait")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printInfo(cmd *cobra.Command, r *palmv1.InfoResponse) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	list := func(s []string) string {
		if len(s) == 0 {
			return "-"
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "name:\t%s\n", r.GetName())
	fmt.Fprintf(w, "kind:\t%s\n", r.GetKind())
	fmt.Fprintf(w, "services:\t%s\n", list(r.GetServices()))
	fmt.Fprintf(w, "functions:\t%s\n", list(r.GetFunctions()))
	if r.GetPipelined() {
		fmt.Fprintf(w, "pipelined:\tyes: results go on to the next step\n")
	}
	if r.GetKind() == "master" || r.GetKind() == "hub" {
		var ws []string
		for _, x := range r.GetWorkers() {
			ws = append(ws, fmt.Sprintf("%s (%s)", x.GetName(), strings.Join(x.GetFunctions(), " ")))
		}
		fmt.Fprintf(w, "workers:\t%s\n", list(ws))
	}
	if len(r.GetUpstreams()) > 0 {
		fmt.Fprintf(w, "upstreams:\t%s\n", list(r.GetUpstreams()))
	}
	for i, p := range r.GetParts() {
		label := "parts:"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "%s\t%s\n", label, describePart(p))
	}
	names := make([]string, 0, len(r.GetCounters()))
	for n := range r.GetCounters() {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s:\t%d\n", n, r.GetCounters()[n])
	}
	w.Flush()
}

// describePart is one line of a part: name (kind → route: services; notes).
func describePart(p *palmv1.PartInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s", p.GetName(), p.GetKind())
	if p.GetRoute() != "" {
		fmt.Fprintf(&b, " → %s", p.GetRoute())
	}
	if len(p.GetServices()) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(p.GetServices(), ", "))
	}
	keys := make([]string, 0, len(p.GetNotes()))
	for k := range p.GetNotes() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "; %s=%s", k, p.GetNotes()[k])
	}
	b.WriteString(")")
	return b.String()
}
