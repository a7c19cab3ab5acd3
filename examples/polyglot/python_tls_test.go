package polyglot_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

// The Python worker over TLS: it verifies the master with --cacert and
// shares a job with a Go worker.
func TestPythonWorkerTLS(t *testing.T) {
	if err := exec.Command(python, "-c", "import grpc").Run(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s cannot import grpc; apt-get install %s", python, packages)
		}
		t.Fatalf("%s cannot import grpc: %v", python, err)
	}
	gen := t.TempDir()
	if out, err := exec.Command("python/generate.sh", gen).CombinedOutput(); err != nil {
		t.Fatalf("python/generate.sh: %v\n%s", err, out)
	}
	ca := palmtest.NewCA(t, "palm")
	cert, key, _ := ca.Issue(t, "master")
	serverTLS, err := palm.TLSFiles{Cert: cert, Key: key}.Config()
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := palm.TLSFiles{CACert: ca.File}.Config()
	if err != nil {
		t.Fatal(err)
	}
	log := palm.WithLogger(palmtest.Logger(t, hclog.Warn))
	m, err := master.New("server", log, palm.WithTLS(serverTLS))
	if err != nil {
		t.Fatal(err)
	}
	addr := palmtest.ServeTCP(t, m)
	py := startPython(t, gen, "python-worker", addr, "--cacert", ca.File)

	gw, err := worker.New("go-worker", addr, log, worker.Credit(1), palm.WithTLS(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	gw.HandleFunc("foo", func(_ context.Context, p []byte) ([]byte, error) {
		return append([]byte("go-worker processed "), p...), nil
	})
	wctx, wcancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- gw.Run(wctx) }()
	t.Cleanup(func() { wcancel(); <-ran })
	palmtest.Eventually(t, 30*time.Second, "both workers connected over TLS", func() bool { return m.Workers() == 2 || py.exited() })
	if py.exited() {
		t.Fatalf("the Python worker ended early:\n%s", py.output())
	}

	c, err := client.New("server", addr, log, palm.WithTLS(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	by := map[string]int{}
	for reply, err := range c.Job(ctx, "server.foo", client.Repeat([]byte("a message"), 100)) {
		if err != nil {
			t.Fatalf("job: %v\npython worker:\n%s", err, py.output())
		}
		name, _ := strings.CutSuffix(string(reply), " processed a message")
		by[name]++
	}
	if by["python-worker"] == 0 || by["go-worker"] == 0 || by["python-worker"]+by["go-worker"] != 100 {
		t.Fatalf("replies by worker: %v\npython worker:\n%s", by, py.output())
	}
}
