package polyglot_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
)

// The commands of docs/polyglot.md, run as written from a copy of the
// repository's protocol and workers, give a master three workers in three
// languages that share a job.
func TestPolyglotDoc(t *testing.T) {
	missing := cppToolchainMissing()
	for _, tool := range []string{"node", "npm", python} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = tool + " is not installed"
		}
	}
	if err := exec.Command(python, "-c", "import grpc").Run(); err != nil {
		missing = python + " cannot import grpc"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; .ci/run installs what the polyglot workers need", missing)
		}
		t.Skip(missing)
	}
	doc, err := os.ReadFile("../../docs/polyglot.md")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	copyTree(t, "../../proto", filepath.Join(root, "proto"))
	for _, lang := range []string{"python", "node", "cpp"} {
		copyTree(t, lang, filepath.Join(root, "examples", "polyglot", lang))
	}

	m, err := master.New("server", palm.WithLogger(palmtest.Logger(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	addr := palmtest.ServeTCP(t, m)
	for _, lang := range []string{"python", "node", "cpp"} {
		_, rest, ok := strings.Cut(string(doc), "<!-- polyglot: "+lang+" -->\n```sh\n")
		if !ok {
			t.Fatalf("docs/polyglot.md has no block for %s", lang)
		}
		block, _, _ := strings.Cut(rest, "```")
		script := "set -e\n" + strings.ReplaceAll(block, "127.0.0.1:5559", addr)
		p := &proc{done: make(chan struct{})}
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = p, p
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			}
			t.Logf("%s block output:\n%s", lang, p.output())
		})
	}
	palmtest.Eventually(t, 4*time.Minute, "the three workers joined (the C++ one is built first)", func() bool { return m.Workers() == 3 })

	c, err := client.New("server", addr, palm.WithLogger(palmtest.Logger(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	byWorker := map[string]int{}
	payloads := func(yield func([]byte) bool) {
		for i := range 300 {
			if !yield(fmt.Appendf(nil, "message %d", i)) {
				return
			}
		}
	}
	for reply, err := range c.Job(ctx, "server.foo", payloads) {
		if err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(string(reply), " processed ")
		byWorker[name]++
	}
	for _, name := range []string{"worker-py", "worker-node", "worker-cpp"} {
		if byWorker[name] == 0 {
			t.Errorf("%s answered nothing: %v", name, byWorker)
		}
	}
	t.Logf("replies by worker: %v", byWorker)
}

// copyTree copies the files under from into to, leaving out what the
// workers build (gen, build, node_modules).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			switch d.Name() {
			case "gen", "build", "node_modules", "__pycache__":
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		info, err := d.Info()
		if err != nil {
			return err
		}
		dst, err := os.OpenFile(filepath.Join(to, rel), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		defer dst.Close()
		_, err = io.Copy(dst, src)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
