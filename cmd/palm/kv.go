package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/gopalm/palm/client"
)

func newKV(c *common, stdin io.Reader) *cobra.Command {
	var timeout time.Duration
	kv := &cobra.Command{
		Use:   "kv",
		Short: "Use a running server's cache",
		Long: `kv reads and writes the key-value cache of the server at --address. With
--session, every key is prefixed with the session, as the original's client
does.`,
		// Without a RunE of its own, cobra would print the help for an
		// unknown verb ("palm kv frobnicate") and exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.clientFlags(kv.PersistentFlags())
	c.sessionFlag(kv.PersistentFlags())
	kv.PersistentFlags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the answer, including for the server to come up with --wait")
	with := func(cmd *cobra.Command, f func(ctx context.Context, cl *client.Client) error) error {
		cl, err := c.client(c.server, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		return f(ctx, cl)
	}
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value stored under KEY (exit 1 with NotFound when there is none)",
		Args:  cobra.ExactArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, cl *client.Client) error {
				v, err := cl.Get(ctx, args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
				return err
			})
		}),
	}
	set := &cobra.Command{
		Use:   "set KEY [VALUE]",
		Short: "Store VALUE (or standard input) under KEY and print the key; an empty KEY (\"\") makes the server choose one",
		Args:  cobra.RangeArgs(1, 2),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			var value []byte
			if len(args) == 2 && args[1] != "-" {
				value = []byte(args[1])
			} else {
				b, err := io.ReadAll(stdin)
				if err != nil {
					return err
				}
				value = b
			}
			return with(cmd, func(ctx context.Context, cl *client.Client) error {
				key, err := cl.Set(ctx, args[0], value)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), key)
				return err
			})
		}),
	}
	del := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete KEY; prints \"deleted\" or \"not found\" (both exit 0)",
		Args:  cobra.ExactArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, cl *client.Client) error {
				deleted, err := cl.Delete(ctx, args[0])
				if err != nil {
					return err
				}
				word := "deleted"
				if !deleted {
					word = "not found"
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), word)
				return err
			})
		}),
	}
	keys := &cobra.Command{
		Use:   "keys [PREFIX]",
		Short: "Print every key that starts with PREFIX, one per line, sorted",
		Args:  cobra.MaximumNArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return with(cmd, func(ctx context.Context, cl *client.Client) error {
				for k, err := range cl.Keys(ctx, prefix) {
					if err != nil {
						return err
					}
					if _, err := fmt.Fprintln(cmd.OutOrStdout(), k); err != nil {
						return err
					}
				}
				return nil
			})
		}),
	}
	kv.AddCommand(get, set, del, keys)
	return kv
}
