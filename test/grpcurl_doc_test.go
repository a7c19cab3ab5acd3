package test

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/palmtest"
)

// docBlocks returns the shell blocks of a doc marked <!-- grpcurl: tag -->.
func docBlocks(t *testing.T, doc, tag string) []string {
	t.Helper()
	return markedBlocks(t, doc, "grpcurl: "+tag)
}

// markedBlocks returns the shell blocks of a doc marked <!-- marker -->.
func markedBlocks(t *testing.T, doc, tag string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", doc))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(b)
	marker := "<!-- " + tag + " -->\n```sh\n"
	for {
		_, after, ok := strings.Cut(rest, marker)
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "```")
		blocks, rest = append(blocks, block), tail
	}
	if len(blocks) == 0 {
		t.Fatalf("docs/%s has no block marked %q", doc, tag)
	}
	return blocks
}

// runDoc runs a block as a reader would paste it into bash, with the
// documented address replaced by addr and grpcurl on PATH, in dir; it
// returns the output and the commands that failed.
func runDoc(t *testing.T, block, addr, dir string) (string, []string) {
	t.Helper()
	script := "trap 'echo \"FAILED: $BASH_COMMAND\" >&2' ERR\n" + strings.ReplaceAll(block, "127.0.0.1:5555", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(grpcurlBinary(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, _ := cmd.CombinedOutput()
	var failed []string
	for _, l := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutPrefix(l, "FAILED: "); ok {
			failed = append(failed, f)
		}
	}
	return string(out), failed
}

// Every command of docs/grpcurl.md works as written, against a server at
// a free port instead of 127.0.0.1:5555.
func TestGrpcurlDoc(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := serveDocServer(t, dir)
	for _, block := range docBlocks(t, "grpcurl.md", "plaintext") {
		out, failed := runDoc(t, block, addr, dir)
		for _, f := range failed {
			if !strings.Contains(f, "-max-time") {
				t.Errorf("a documented command failed: %s\n%s", f, out)
			}
		}
		for _, want := range []string{
			"palm.v1.GatewayService", "rpc Eval", "message PalmMessage",
			b64("you sent me a message"), b64("you sent me one"), b64("you sent me two"), `"completed"`,
			`"subscribed": true`, `"value": "aGVsbG8="`, `"greeting"`, `"status": "SERVING"`,
			`"name": "my_server"`, `"kind": "server"`, `"my_server.foo"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the documented commands did not print %q:\n%s", want, out)
			}
		}
	}
	for _, block := range docBlocks(t, "grpcurl.md", "plaintext, fails") {
		out, failed := runDoc(t, block, addr, dir)
		if len(failed) != 1 || !strings.Contains(out, "NotFound") {
			t.Errorf("the failing example did not fail with NotFound:\n%s", out)
		}
	}

	// TLS: the files the doc names, minted for the test.
	ca := palmtest.NewCA(t, "palm")
	link := func(from, to string) {
		t.Helper()
		if err := os.Link(from, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, _ := ca.Issue(t, "my_server")
	ccert, ckey, _ := ca.Issue(t, "client")
	link(ca.File, "ca.pem")
	link(ccert, "client.pem")
	link(ckey, "client-key.pem")
	cfg, err := palm.TLSFiles{Cert: cert, Key: key, CACert: ca.File, ClientAuth: true}.Config()
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr, _ := serveTCP(t, palm.WithTLS(cfg))
	for _, block := range docBlocks(t, "grpcurl.md", "tls") {
		out, failed := runDoc(t, block, tlsAddr, dir)
		if len(failed) > 0 {
			t.Errorf("documented TLS commands failed: %q\n%s", failed, out)
		}
		for _, want := range []string{"palm.v1.GatewayService", b64("you sent me a message"), `"status": "SERVING"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the documented TLS commands did not print %q:\n%s", want, out)
			}
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// serveDocServer runs the server command of docs/grpcurl.md, with the palm
// command built for the test, on a free address until the test ends, and
// returns the address.
func serveDocServer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	build := exec.Command(goCommand(t), palmtest.GoBuild(filepath.Join(bin, "palm"), "./cmd/palm")...)
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building palm: %v\n%s", err, out)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	block := docBlocks(t, "grpcurl.md", "server")[0]
	cmd := exec.Command("bash", "-c", "exec "+strings.TrimSpace(strings.ReplaceAll(block, "127.0.0.1:5555", addr)))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	palmtest.Eventually(t, 30*time.Second, "the documented server is up", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return addr
}
