//go:build unix

// Command testworker is the worker process of palm's end-to-end reliability
// tests (test/reliability_test.go): a real OS process that the tests can
// kill, stop and interrupt while it holds tasks.
//
// It serves one function, foo, which answers "<name> processed <payload>"
// after --delay. A task whose payload is "poison" kills the process with
// SIGKILL while it holds the task, as a crashing worker would. SIGINT or
// SIGTERM stops it gracefully (it finishes and reports the tasks it holds);
// it then prints "stopped" on standard output and exits 0.
//
//	testworker --name w1 --address 127.0.0.1:5556 --credit 4 --delay 2ms --log-tasks
//
// With --log-tasks it logs, at INFO on standard error, "task started" as
// each task starts and "handled" as it ends, each with payload=<payload>,
// so that a test can see what the worker spent time on. With --watch-stdin
// it also stops when standard input closes: a test gives it a pipe, so that
// a worker outlives no test binary that died without cleaning up.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/test/cmd/internal/lifetime"
	"github.com/gopalm/palm/worker"
)

func main() {
	name := flag.String("name", "testworker", "the worker's name, at the start of each reply")
	address := flag.String("address", "127.0.0.1:5556", "the master's address")
	credit := flag.Int("credit", 1, "the most tasks held at once")
	delay := flag.Duration("delay", 0, "how long each task takes")
	logTasks := flag.Bool("log-tasks", false, `log "task started" and "handled" for each task, at INFO on standard error`)
	watchStdin := flag.Bool("watch-stdin", false, "stop gracefully when standard input closes")
	functions := flag.String("functions", "foo", "the functions served, separated by commas; each does what foo does")
	flag.Parse()

	ctx, stop := lifetime.Context(*watchStdin)
	defer stop()

	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info})
	w, err := worker.New(*name, *address, worker.Credit(*credit), palm.WithLogger(logger))
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(2)
	}
	foo := func(ctx context.Context, payload []byte) ([]byte, error) {
		if string(payload) == "poison" {
			// Die holding the task, with no chance to report anything.
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		if *logTasks {
			w.Logger().Info("task started", "payload", string(payload))
		}
		if *delay > 0 {
			t := time.NewTimer(*delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, context.Cause(ctx)
			}
		}
		if *logTasks {
			w.Logger().Info("handled", "payload", string(payload))
		}
		return fmt.Appendf(nil, "%s processed %s", *name, payload), nil
	}
	for _, f := range strings.Split(*functions, ",") {
		w.HandleFunc(f, foo)
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(1)
	}
	fmt.Println("stopped")
}
