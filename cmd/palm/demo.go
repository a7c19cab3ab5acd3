package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

func newDemo(c *common) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a master, two workers and a client in one process",
		Long: `demo runs the parallel server of the original manual's "Servers": a master
named server on a free port of the loopback interface, two workers named
worker1 and worker2 that serve foo, and a client that sends ten messages to
server.foo and prints the replies. Nothing to set up; the components' logs
go to standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), c, cmd)
		},
	}
	c.logFlag(cmd.Flags())
	return cmd
}

func demo(ctx context.Context, c *common, cmd *cobra.Command) error {
	logger, err := c.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	m, err := master.New("server", palm.WithLogger(logger))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := lis.Addr().String()
	serveCtx, stopMaster := context.WithCancel(ctx)
	defer stopMaster()
	served := make(chan error, 1)
	go func() { served <- m.Serve(serveCtx, lis) }()

	workCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var workers sync.WaitGroup
	for _, name := range []string{"worker1", "worker2"} {
		w, err := worker.New(name, addr, palm.WithLogger(logger))
		if err != nil {
			return err
		}
		w.HandleFunc("foo", func(_ context.Context, message []byte) ([]byte, error) {
			return append([]byte(w.Name()+" processed "), message...), nil
		})
		workers.Go(func() { w.Run(workCtx) })
	}

	jobErr := func() error {
		if err := waitForWorkers(ctx, m, 2); err != nil {
			return err
		}
		cl, err := client.New("server", addr, palm.WithLogger(logger))
		if err != nil {
			return err
		}
		defer cl.Close()
		jobCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for reply, err := range cl.Job(jobCtx, "server.foo", client.Repeat([]byte("a message"), 10), client.Messages(10)) {
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", reply)
		}
		return nil
	}()
	stopWorkers()
	workers.Wait()
	stopMaster()
	if err := <-served; err != nil {
		return err
	}
	return jobErr
}

// waitForWorkers waits until n workers are connected to m, for at most 30 s.
func waitForWorkers(ctx context.Context, m *master.Master, n int) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for m.Workers() < n {
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("only %d of %d workers connected after 30s", m.Workers(), n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
