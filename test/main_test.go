// Package test holds palm's end-to-end tests: they run the real tools (buf,
// grpcurl) and talk to real servers over real TCP. They need the go command
// on PATH and the modules of tools/go.mod and tools/buf/go.mod (downloaded on
// first use, or beforehand by .ci/run).
package test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind, such as
// a server that did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
