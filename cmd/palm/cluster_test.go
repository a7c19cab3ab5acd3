package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopalm/palm/internal/palmtest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// palmBinary builds the command once per test run.
func palmBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "palm-cmd-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "palm")
		if out, err := exec.Command("go", palmtest.GoBuild(binPath, ".")...).CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// component is a palm process the test started.
type component struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	seen chan string
	done chan struct{}
}

// startPalm runs `palm args...` until the test ends (SIGTERM, then the
// process must exit).
func startPalm(t *testing.T, args ...string) *component {
	t.Helper()
	return startPalmEnv(t, nil, args...)
}

// startPalmEnv is startPalm with PALM_ variables in env.
func startPalmEnv(t *testing.T, env []string, args ...string) *component {
	t.Helper()
	c := &component{cmd: exec.Command(palmBinary(t), args...), seen: make(chan string, 4096), done: make(chan struct{})}
	c.cmd.Env = append(withoutPalmEnv(os.Environ()), env...)
	r, w := io.Pipe()
	c.cmd.Stderr, c.cmd.Stdout = w, w
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			select {
			case c.seen <- sc.Text():
			default:
			}
		}
	}()
	go func() { c.cmd.Wait(); w.Close(); <-read; close(c.done) }()
	t.Cleanup(func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
			t.Errorf("palm %q did not stop on SIGTERM:\n%s", args, c.output())
		}
		if palmtest.HasRace(c.output()) {
			t.Errorf("palm %q found a data race:\n%s", args, c.output())
		}
	})
	return c
}

func (c *component) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// waitFor waits until the component logs a line holding every part.
func (c *component) waitFor(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-c.seen:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return
			}
		case <-c.done:
			t.Fatalf("the component ended before logging %q:\n%s", parts, c.output())
		case <-deadline:
			t.Fatalf("the component did not log %q:\n%s", parts, c.output())
		}
	}
}

// A cluster started from palm commands alone: a pipelined master, two
// workers whose function is a shell command, a pipeline whose function is
// a long-running line-speaking command, and `palm job` feeding it.
func TestClusterFromCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs processes; skipped with -short")
	}
	masterAddr, stageAddr := palmtest.FreeAddr(t), palmtest.FreeAddr(t)
	m := startPalm(t, "master", "server", "--listen", masterAddr, "--pipelined")
	m.waitFor(t, "serving")
	for _, name := range []string{"worker1", "worker2"} {
		startPalm(t, "worker", name, "--master", masterAddr, "--concurrency", "4",
			"--exec", `foo=printf '%s processed ' `+name+`; cat`)
	}
	m.waitFor(t, "worker joined")
	m.waitFor(t, "worker joined")
	// The stage's address and mode from their PALM_ twins.
	p := startPalmEnv(t, []string{"PALM_LISTEN=" + stageAddr, "PALM_EXEC_MODE=lines"}, "pipeline", "my_pipeline", "--from", masterAddr+"=server",
		"--exec", `foo=while read l; do echo "and I pipelined $l"; done`)
	p.waitFor(t, "subscribed")

	var in bytes.Buffer
	for i := range 200 {
		fmt.Fprintf(&in, "message %d\n", i)
	}
	job := exec.Command(palmBinary(t), "job", "--address", masterAddr, "--sub-address", stageAddr, "--timeout", "60s", "server.foo", "my_pipeline.foo")
	job.Env = withoutPalmEnv(os.Environ())
	job.Stdin = &in
	var out, errOut bytes.Buffer
	job.Stdout, job.Stderr = &out, &errOut
	if err := job.Run(); err != nil {
		t.Fatalf("palm job: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d replies, want 200:\n%s\nstderr:\n%s", len(lines), out.String(), errOut.String())
	}
	byWorker := map[string]int{}
	var payloads []string
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "and I pipelined ")
		name, payload, ok2 := strings.Cut(rest, " processed ")
		if !ok || !ok2 {
			t.Fatalf("reply %q", l)
		}
		byWorker[name]++
		payloads = append(payloads, payload)
	}
	sort.Strings(payloads)
	for i, p := range payloads {
		if i > 0 && p == payloads[i-1] {
			t.Fatalf("%q answered twice", p)
		}
	}
	if byWorker["worker1"] == 0 || byWorker["worker2"] == 0 {
		t.Errorf("the job was not shared: %v", byWorker)
	}
	t.Logf("replies by worker: %v", byWorker)

	info := exec.Command(palmBinary(t), "info", masterAddr)
	info.Env = withoutPalmEnv(os.Environ())
	got, err := info.CombinedOutput()
	if err != nil {
		t.Fatalf("palm info: %v\n%s", err, got)
	}
	for _, want := range []string{"name:", "server", "kind:", "master", "functions:", "server.foo", "worker1 (foo)", "worker2 (foo)", "messages_in:", "200", "workers_connected:", "palm.v1.DispatchService", "Pull (inbound → WorkerPush: palm.v1.GatewayService)", "WorkerPush (outbound → Pub: palm.v1.DispatchService)", "Cache (bypass: palm.v1.CacheService)"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("palm info lacks %q:\n%s", want, got)
		}
	}
	info = exec.Command(palmBinary(t), "info", stageAddr)
	info.Env = withoutPalmEnv(os.Environ())
	got, err = info.CombinedOutput()
	flat := strings.Join(strings.Fields(string(got)), " ")
	if err != nil || !strings.Contains(flat, "upstreams: server@"+masterAddr) || !strings.Contains(flat, "functions: my_pipeline.foo") || !strings.Contains(flat, "messages_out: 200") {
		t.Errorf("palm info of the pipeline: %v\n%s", err, got)
	}
}

// A failing command fails its message alone; job reports it and exits 1.
func TestJobReportsFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs processes; skipped with -short")
	}
	addr := palmtest.FreeAddr(t)
	s := startPalm(t, "server", "my_server", "--listen", addr,
		"--exec", `foo=read x; if [ "$x" = bad ]; then echo "cannot take $x" >&2; exit 4; fi; printf 'you sent me %s' "$x"`)
	s.waitFor(t, "serving")
	job := exec.Command(palmBinary(t), "job", "--address", addr, "--timeout", "30s", "my_server.foo")
	job.Env = withoutPalmEnv(os.Environ())
	job.Stdin = strings.NewReader("good\nbad\nfine\n")
	var out, errOut bytes.Buffer
	job.Stdout, job.Stderr = &out, &errOut
	err := job.Run()
	if code := job.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v), want 1\nstderr: %s", code, err, errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "you sent me good\n") || !strings.Contains(got, "you sent me fine\n") || strings.Count(got, "\n") != 2 {
		t.Errorf("stdout %q", got)
	}
	for _, want := range []string{"message 2 failed in my_server.foo: cannot take bad (exit status 4)", "1 of 3 messages failed"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr %q lacks %q", errOut.String(), want)
		}
	}
}
