// Package lifetime is how the test programs under test/cmd live and die:
// until SIGINT or SIGTERM, or, when asked, until their standard input
// closes (which the kernel does when the test that started them dies).
package lifetime

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Context returns a context that ends on SIGINT or SIGTERM and, with
// watchStdin, when standard input closes; call stop when done.
func Context(watchStdin bool) (ctx context.Context, stop func()) {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if !watchStdin {
		return ctx, stopSignals
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx, func() { cancel(); stopSignals() }
}
