package polyglot_test

// The worker written in Node.js (node/worker.js), next to one written in Go,
// over plaintext and over TLS. The test installs the worker's packages itself
// with npm ci, as node/README.md says, so it needs only node and npm on PATH.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// nodeJobSize is the number of messages of each job.
const nodeJobSize = 200

// requireNode skips the test when node or npm is missing, or fails it when
// CI is set. Then it lays out a copy of the worker in a temporary directory,
// as in the repository (examples/polyglot/node/ with proto/palm/v1/ three
// levels up, where worker.js reads the protocol), installs its packages
// there with npm ci as node/README.md says, and returns the copy's
// directory. Working on a copy leaves the checkout as it was and lets two
// runs of the test go side by side.
func requireNode(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found on PATH: the Node.js worker needs Node.js 18 or later and npm (on Debian: apt-get install nodejs npm)", tool)
			if os.Getenv("CI") == "" {
				t.Skip(msg)
			}
			t.Fatal(msg + " (CI is set: the machine should have them)")
		}
	}
	root := t.TempDir()
	dir := filepath.Join(root, "examples", "polyglot", "node")
	copyNodeFiles(t, dir, "node/worker.js", "node/package.json", "node/package-lock.json")
	protos, err := filepath.Glob("../../proto/palm/v1/*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no .proto files in ../../proto/palm/v1 (%v)", err)
	}
	copyNodeFiles(t, filepath.Join(root, "proto", "palm", "v1"), protos...)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	t.Logf("npm ci took %v", time.Since(start).Round(time.Millisecond))
	return dir
}

// copyNodeFiles copies files into dir, creating it.
func copyNodeFiles(t *testing.T, dir string, files ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// serveNodeMaster serves a master named server with opts on a free port of
// 127.0.0.1 and returns it, its address, and a function that stops it (and
// so drains its workers) and returns Serve's error; the test's end calls it
// too.
func serveNodeMaster(t *testing.T, opts ...master.Option) (*master.Master, string, func() error) {
	t.Helper()
	opts = append([]master.Option{palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)
	m, err := master.New("server", opts...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, lis) }()
	stop := sync.OnceValue(func() error { cancel(); return <-served })
	t.Cleanup(func() { stop() })
	return m, lis.Addr().String(), stop
}

// runGoWorkerBesideNode runs an in-process Go worker named go-worker, with
// credit 1 like the Node worker, and returns a function that stops it and
// returns Run's error; the test's end calls it too.
func runGoWorkerBesideNode(t *testing.T, addr string, opts ...worker.Option) func() error {
	t.Helper()
	opts = append([]worker.Option{worker.Credit(1), palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)
	w, err := worker.New("go-worker", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	w.HandleFunc("foo", func(_ context.Context, payload []byte) ([]byte, error) {
		return append([]byte("go-worker processed "), payload...), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-ran })
	t.Cleanup(func() { stop() })
	return stop
}

// startNode runs worker.js in dir with args, as node/README.md says, and
// kills it if it still runs when the test ends.
func startNode(t *testing.T, dir string, args ...string) (*proc, *os.Process) {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	cmd := exec.Command("node", append([]string{"worker.js"}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p, cmd.Process
}

// waitNodeExit waits for the Node worker to exit after what happened at
// since, and checks that it exited with status 0 having printed want.
func waitNodeExit(t *testing.T, p *proc, since time.Time, what, want string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the Node worker still runs 15s after %s:\n%s", what, p.output())
	}
	t.Logf("the Node worker exited within %v of %s", time.Since(since).Round(time.Millisecond), what)
	if p.err != nil || !strings.Contains(p.output(), want) || !strings.Contains(p.output(), "node-worker: stopped") {
		t.Errorf("the Node worker did not stop cleanly after %s (%v); want %q:\n%s", what, p.err, want, p.output())
	}
}

// shareNodeJob waits until both workers are connected, then runs a job of
// nodeJobSize distinct messages and checks that each gets exactly one
// reply, from one of the two workers, and that both had a share. Unless
// it is nil, midway is called once half the replies have come.
func shareNodeJob(t *testing.T, m *master.Master, node *proc, addr string, midway func(), opts ...client.Option) {
	t.Helper()
	start := time.Now()
	palmtest.Eventually(t, 20*time.Second, "both workers connected", func() bool {
		return m.Workers() == 2 || node.exited()
	})
	if node.exited() {
		t.Fatalf("the Node worker ended early (%v):\n%s", node.err, node.output())
	}
	t.Logf("both workers connected %v after the Node worker started", time.Since(start).Round(time.Millisecond))

	opts = append([]client.Option{palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)
	c, err := client.New("server", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	payloads := func(yield func([]byte) bool) {
		for i := range nodeJobSize {
			if !yield(fmt.Appendf(nil, "message %d", i)) {
				return
			}
		}
	}
	start = time.Now()
	replies := make([]int, nodeJobSize) // replies per message
	by := map[string]int{}              // replies per worker
	got := 0                            // replies in all
	for reply, err := range c.Job(ctx, "server.foo", payloads) {
		if err != nil {
			t.Fatalf("job: %v\nNode worker:\n%s", err, node.output())
		}
		name, number, _ := strings.Cut(string(reply), " processed message ")
		i, err := strconv.Atoi(number)
		if err != nil || i < 0 || i >= nodeJobSize || (name != "node-worker" && name != "go-worker") {
			t.Fatalf("unexpected reply %q", reply)
		}
		replies[i]++
		by[name]++
		if got++; got == nodeJobSize/2 && midway != nil {
			midway()
		}
	}
	t.Logf("%d messages took %v, replies by worker: %v", nodeJobSize, time.Since(start).Round(time.Millisecond), by)
	for i, n := range replies {
		if n != 1 {
			t.Errorf("message %d got %d replies, want 1", i, n)
		}
	}
	if by["node-worker"] == 0 || by["go-worker"] == 0 {
		t.Errorf("a worker answered nothing: %v\nNode worker:\n%s", by, node.output())
	}
}

// TestNodeWorker runs the Node worker beside a Go worker, over plaintext
// and over TLS, with one npm ci for both.
func TestNodeWorker(t *testing.T) {
	dir := requireNode(t)

	// The Node worker leaves on SIGTERM in the middle of a job: the master
	// hands what it had sent it meanwhile to the Go worker, and no message
	// is lost or answered twice.
	t.Run("plaintext", func(t *testing.T) {
		m, addr, stopMaster := serveNodeMaster(t)
		node, proc := startNode(t, dir, "node-worker", addr)
		stopGo := runGoWorkerBesideNode(t, addr)

		var signalled time.Time
		shareNodeJob(t, m, node, addr, func() {
			signalled = time.Now()
			if err := proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		})
		waitNodeExit(t, node, signalled, "SIGTERM", "node-worker: SIGTERM, leaving")
		palmtest.Eventually(t, 5*time.Second, "the master sees the Node worker leave", func() bool { return m.Workers() == 1 })

		if err := stopGo(); err != nil {
			t.Errorf("go-worker: Run: %v", err)
		}
		if err := stopMaster(); err != nil {
			t.Errorf("master: Serve: %v", err)
		}
	})

	// With certificates minted here, the Node worker trusts the CA given
	// with --cacert, shares a job with a Go worker, and leaves when the
	// master stops and tells it to drain.
	t.Run("TLS", func(t *testing.T) {
		ca := palmtest.NewCA(t, "palm")
		cert, key, _ := ca.Issue(t, "master")
		serverTLS, err := palm.TLSFiles{Cert: cert, Key: key}.Config()
		if err != nil {
			t.Fatal(err)
		}
		dialTLS, err := palm.TLSFiles{CACert: ca.File}.Config()
		if err != nil {
			t.Fatal(err)
		}
		m, addr, stopMaster := serveNodeMaster(t, palm.WithTLS(serverTLS))
		node, _ := startNode(t, dir, "--cacert", ca.File, "node-worker", addr)
		stopGo := runGoWorkerBesideNode(t, addr, palm.WithTLS(dialTLS))

		shareNodeJob(t, m, node, addr, nil, palm.WithTLS(dialTLS))

		stopped := time.Now()
		if err := stopMaster(); err != nil {
			t.Errorf("master: Serve: %v", err)
		}
		waitNodeExit(t, node, stopped, "the master's stop", "node-worker: draining")
		if err := stopGo(); err != nil {
			t.Errorf("go-worker: Run: %v", err)
		}
	})
}
