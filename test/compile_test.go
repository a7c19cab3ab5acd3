package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// misuses are programs that give a constructor an option it does not take;
// each must fail to compile with an error that contains every want.
var misuses = []struct {
	name string
	body string // the statements of main
	want []string
}{
	{"worker_master_option", `worker.New("w", "127.0.0.1:1", master.QueueSize(5))`,
		[]string{"cannot use master.QueueSize(5)", "master.CommonOption does not implement worker.Option"}},
	{"hub_window", `master.NewHub("h", master.Upstream{Address: "127.0.0.1:1", Topic: "t"}, master.Window(3))`,
		[]string{"cannot use master.Window(3)", "master.Option does not implement master.HubOption"}},
	{"master_backoff", `master.New("m", master.Backoff(time.Millisecond, time.Second))`,
		[]string{"cannot use master.Backoff", "master.HubOption does not implement master.Option"}},
	{"server_backoff", `pipeline.NewServer("s", pipeline.Backoff(time.Millisecond, time.Second))`,
		[]string{"cannot use pipeline.Backoff", "pipeline.StageOption does not implement pipeline.ServerOption"}},
	{"sink_window", `pipeline.NewSink("k", []pipeline.Upstream{{Address: "127.0.0.1:1", Topic: "t"}}, pipeline.WindowBytes(3))`,
		[]string{"cannot use pipeline.WindowBytes(3)", "pipeline.ServerOption does not implement pipeline.StageOption"}},
	{"client_worker_option", `client.New("s", "127.0.0.1:1", worker.Credit(1))`,
		[]string{"cannot use worker.Credit(1)", "worker.Option does not implement client.Option"}},
	{"dial_client_option", `palm.DialOptions(client.Window(1))`,
		[]string{"cannot use client.Window(1)", "as palm.Option value"}},
	{"compose_master_option", `compose.New("c", master.QueueSize(1))`,
		[]string{"cannot use master.QueueSize(1)", "master.CommonOption does not implement compose.Option"}},
	{"master_compose_option", `master.New("m", compose.Kind("mine"))`,
		[]string{"cannot use compose.Kind(\"mine\")", "compose.Option does not implement master.Option"}},
	{"option_made_elsewhere", "type fake struct{}\n\tworker.New(\"w\", \"127.0.0.1:1\", fake{})",
		[]string{"fake does not implement worker.Option (missing method applyConfig)"}},
}

// fits gives every constructor shared options and the options of its own
// role, and must compile.
const fits = `shared := []palm.Option{palm.WithLogLevel(hclog.Warn), palm.SlowSubscriberTimeout(time.Second)}
	up := master.Upstream{Address: "127.0.0.1:1", Topic: "t"}
	both := master.QueueSize(5)
	master.New("m", shared[0], shared[1], both, master.Window(3), master.WindowBytes(1<<20))
	master.NewHub("h", up, shared[0], both, master.Backoff(time.Millisecond, time.Second))
	pipeline.NewServer("s", shared[0], pipeline.Concurrency(2), pipeline.Window(3), pipeline.WindowBytes(1<<20))
	pipeline.NewPipeline("p", up, shared[0], pipeline.Concurrency(2), pipeline.Backoff(time.Millisecond, time.Second))
	pipeline.NewSink("k", []pipeline.Upstream{up}, shared[1], pipeline.SubscriberQueue(4), pipeline.Backoff(time.Millisecond, time.Second))
	worker.New("w", "127.0.0.1:1", shared[0], worker.Credit(1), worker.Backoff(time.Millisecond, time.Second))
	client.New("s", "127.0.0.1:1", shared[1], client.Window(1), client.WaitForServer(time.Second))
	compose.New("c", shared[0], compose.Kind("mine"), compose.SubscriberQueue(4))
	palm.DialOptions(shared...)`

// program is a main package whose main runs body, with what the cases use
// imported.
func program(body string) string {
	return `package main

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

var (
	_ = time.Second
	_ = hclog.Warn
	_ palm.Option
	_ client.Option
	_ compose.Option
	_ master.Option
	_ pipeline.ServerOption
	_ worker.Option
)

func main() {
	` + body + `
}
`
}

// TestOptionsCompileChecked builds a program for each misuse and one that
// fits, in one go build, and checks that the compiler refuses each misuse
// naming the option and the option type it is not, and takes the fit. The
// programs are written in a directory of the module whose name starts with
// "_", which ./... patterns skip.
func TestOptionsCompileChecked(t *testing.T) {
	root := repoRoot(t)
	dir, err := os.MkdirTemp(filepath.Join(root, "test"), "_compile")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "main.go"), []byte(program(body)), 0o644); err != nil {
			t.Fatal(err)
		}
		return "./" + filepath.ToSlash(filepath.Join(rel, name))
	}
	args := []string{"build", write("fits", fits)}
	for _, m := range misuses {
		args = append(args, write(m.name, m.body))
	}
	r := run(t, 3*time.Minute, root, goCommand(t), args...)
	if r.err == nil {
		t.Fatalf("go build succeeded; want every misuse refused\n%v", r)
	}
	errs := byPackage(r.stderr, "github.com/gopalm/palm/"+filepath.ToSlash(rel)+"/")
	if out, ok := errs["fits"]; ok {
		t.Errorf("a program giving each constructor options it takes did not compile:\n%s", out)
	}
	for _, m := range misuses {
		out, ok := errs[m.name]
		if !ok {
			t.Errorf("%s compiled; want it refused:\n\t%s", m.name, m.body)
			continue
		}
		for _, w := range m.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the compiler said\n%s\nwant it to say %q", m.name, out, w)
			}
		}
	}
	if len(errs) != len(misuses) {
		t.Errorf("go build failed for %d packages, want %d:\n%v", len(errs), len(misuses), r)
	}
}

// byPackage splits go build's errors by the package they are about (the
// "# path" line before them), keyed by the path past prefix.
func byPackage(stderr, prefix string) map[string]string {
	errs := map[string]string{}
	var pkg string
	for _, line := range strings.Split(stderr, "\n") {
		if p, ok := strings.CutPrefix(line, "# "); ok {
			pkg = strings.TrimPrefix(p, prefix)
			errs[pkg] = ""
			continue
		}
		if pkg != "" && line != "" {
			errs[pkg] += line + "\n"
		}
	}
	return errs
}
