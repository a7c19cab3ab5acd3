// Package test holds palm's end-to-end tests: they run the real tools (buf,
// grpcurl) and talk to real servers over real TCP. They need the go command
// on PATH and the modules of tools/go.mod and tools/buf/go.mod (downloaded on
// first use, or beforehand by .ci/run).
package test

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind, such as
// a server that did not stop, and removes the tools it built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if grpcurlPath != "" {
			os.RemoveAll(filepath.Dir(grpcurlPath))
		}
		os.Exit(code)
	}))
}
