package polyglot_test

import (
	"context"
	"fmt"
	"iter"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

// The Debian packages the C++ worker needs, as .ci/run installs them.
const cppPackages = "g++ pkg-config protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev"

// TestCppWorker builds cpp/worker.cc once, with cpp/build.sh into a
// temporary directory, and runs it next to a Go worker: over plaintext,
// where stopping the master drains it, and over TLS, where SIGTERM stops it.
func TestCppWorker(t *testing.T) {
	if missing := cppToolchainMissing(); missing != "" {
		msg := fmt.Sprintf("%s; apt-get install %s", missing, cppPackages)
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg + " (CI is set: .ci/run should have installed them)")
	}
	bin := buildCppWorker(t)

	t.Run("plaintext", func(t *testing.T) {
		cl := startCppCluster(t, bin, nil, nil)
		cl.job(t, 200)

		// Stopping the master drains the workers: the C++ worker
		// half-closes its stream when told to and exits with 0.
		start := time.Now()
		if err := cl.stopMaster(); err != nil {
			t.Errorf("master: Serve: %v", err)
		}
		cl.waitExit(t, 15*time.Second, "after the master stopped")
		t.Logf("the C++ worker exited %v after the master was told to stop", time.Since(start).Round(time.Millisecond))
		if out := cl.cpp.output(); cl.cpp.err != nil || !strings.Contains(out, "cpp-worker: draining") {
			t.Errorf("the C++ worker did not drain and exit cleanly (%v):\n%s", cl.cpp.err, out)
		}
	})

	t.Run("tls", func(t *testing.T) {
		ca := palmtest.NewCA(t, "palm")
		cert, key, _ := ca.Issue(t, "master")
		cl := startCppCluster(t, bin,
			cppTLS(t, palm.TLSFiles{Cert: cert, Key: key}),
			cppTLS(t, palm.TLSFiles{CACert: ca.File}),
			"--cacert", ca.File)
		cl.job(t, 200)

		// SIGTERM stops the C++ worker at once, with 0, and the master
		// sees it leave.
		if err := cl.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		cl.waitExit(t, 10*time.Second, "after SIGTERM")
		if out := cl.cpp.output(); cl.cpp.err != nil || !strings.Contains(out, "cpp-worker: stopped") {
			t.Errorf("the C++ worker did not exit cleanly on SIGTERM (%v):\n%s", cl.cpp.err, out)
		}
		palmtest.Eventually(t, 10*time.Second, "the master sees the C++ worker leave", func() bool { return cl.m.Workers() == 1 })
	})
}

// cppToolchainMissing says what cpp/build.sh needs and does not find, or "".
func cppToolchainMissing() string {
	for _, tool := range []string{"g++", "pkg-config", "protoc", "grpc_cpp_plugin"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed"
		}
	}
	if err := exec.Command("pkg-config", "--exists", "grpc++", "protobuf").Run(); err != nil {
		return "pkg-config finds no grpc++ or protobuf"
	}
	return ""
}

// buildCppWorker runs cpp/build.sh into a directory of the test's and
// returns the worker's path.
func buildCppWorker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	if out, err := exec.Command("cpp/build.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("cpp/build.sh: %v\n%s", err, out)
	}
	t.Logf("cpp/build.sh took %v", time.Since(start).Round(time.Millisecond))
	return filepath.Join(dir, "worker")
}

func cppTLS(t *testing.T, f palm.TLSFiles) palm.Option {
	t.Helper()
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return palm.WithTLS(cfg)
}

// cppCluster is a master and a Go worker in the test's process, and the
// C++ worker in its own, all stopped when the test ends.
type cppCluster struct {
	m          *master.Master
	addr       string
	clientOpts []client.Option
	stopMaster func() error
	cmd        *exec.Cmd
	cpp        *proc // the C++ worker's output and exit
}

// startCppCluster starts the master with masterTLS on a free port of the
// loopback interface, the C++ worker (named cpp-worker, with the extra
// arguments args) and a Go worker (go-worker, with dialTLS), and waits
// until both workers have joined. Clients of the cluster use dialTLS. A
// nil option is plaintext.
func startCppCluster(t *testing.T, bin string, masterTLS, dialTLS palm.Option, args ...string) *cppCluster {
	t.Helper()
	log := palm.WithLogger(palmtest.Logger(t, hclog.Warn))
	m, err := master.New("server", log, masterTLS)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &cppCluster{m: m, addr: lis.Addr().String(), clientOpts: []client.Option{log, dialTLS}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, lis) }()
	cl.stopMaster = sync.OnceValue(func() error { cancel(); return <-served })
	t.Cleanup(func() { cl.stopMaster() })

	start := time.Now()
	cl.cpp = &proc{done: make(chan struct{})}
	cl.cmd = exec.Command(bin, append([]string{"cpp-worker", cl.addr}, args...)...)
	cl.cmd.Stdout, cl.cmd.Stderr = cl.cpp, cl.cpp
	if err := cl.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cl.cpp.err = cl.cmd.Wait(); close(cl.cpp.done) }()
	t.Cleanup(func() {
		cl.cmd.Process.Kill()
		<-cl.cpp.done
	})

	gw, err := worker.New("go-worker", cl.addr, log, worker.Credit(1), dialTLS)
	if err != nil {
		t.Fatal(err)
	}
	gw.HandleFunc("foo", func(_ context.Context, payload []byte) ([]byte, error) {
		return append([]byte("go-worker processed "), payload...), nil
	})
	wctx, wcancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- gw.Run(wctx) }()
	t.Cleanup(func() {
		wcancel()
		if err := <-ran; err != nil {
			t.Errorf("go-worker: Run: %v", err)
		}
	})

	palmtest.Eventually(t, 30*time.Second, "both workers connected", func() bool {
		return m.Workers() == 2 || cl.cpp.exited()
	})
	if cl.cpp.exited() {
		t.Fatalf("the C++ worker ended early (%v):\n%s", cl.cpp.err, cl.cpp.output())
	}
	t.Logf("the C++ worker connected %v after it started", time.Since(start).Round(time.Millisecond))
	return cl
}

// job sends n distinct messages and checks that each gets exactly one
// reply, from one worker or the other, and that both workers answered.
func (cl *cppCluster) job(t *testing.T, n int) {
	t.Helper()
	c, err := client.New("server", cl.addr, cl.clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	messages := iter.Seq[[]byte](func(yield func([]byte) bool) {
		for i := range n {
			if !yield(fmt.Appendf(nil, "message %d", i)) {
				return
			}
		}
	})
	start := time.Now()
	replies := map[string]int{} // message -> replies
	by := map[string]int{}      // worker -> replies
	for reply, err := range c.Job(ctx, "server.foo", messages) {
		if err != nil {
			t.Fatalf("job: %v\nC++ worker:\n%s", err, cl.cpp.output())
		}
		name, msg, ok := strings.Cut(string(reply), " processed ")
		if !ok || (name != "cpp-worker" && name != "go-worker") {
			t.Fatalf("unexpected reply %q", reply)
		}
		replies[msg]++
		by[name]++
	}
	t.Logf("%d messages took %v, replies by worker: %v", n, time.Since(start).Round(time.Millisecond), by)
	for i := range n {
		if msg := fmt.Sprintf("message %d", i); replies[msg] != 1 {
			t.Errorf("%q got %d replies, want 1", msg, replies[msg])
		}
	}
	if len(replies) != n {
		t.Errorf("replies to %d distinct messages, want %d", len(replies), n)
	}
	if by["cpp-worker"] == 0 || by["go-worker"] == 0 {
		t.Fatalf("a worker answered nothing: %v\nC++ worker:\n%s", by, cl.cpp.output())
	}
}

// waitExit waits until the C++ worker has exited.
func (cl *cppCluster) waitExit(t *testing.T, d time.Duration, when string) {
	t.Helper()
	select {
	case <-cl.cpp.done:
	case <-time.After(d):
		t.Fatalf("the C++ worker still runs %v %s:\n%s", d, when, cl.cpp.output())
	}
}
