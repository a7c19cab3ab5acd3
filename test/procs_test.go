//go:build unix

package test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
)

// This file runs the processes of the reliability tests: the testworker
// program (test/cmd/testworker), built once for all the tests that use it,
// and in-process masters and clients on free ports of 127.0.0.1.

// testworkerBuild is the testworker binary shared by the tests running now.
// The first test to ask builds it; the last to finish removes it.
var testworkerBuild struct {
	mu    sync.Mutex
	users int
	dir   string
	path  string
}

// testworkerBinary returns the path of the testworker program, built from
// the repository with the go command. Call it before t.Parallel, so that
// every parallel test holds the binary while the others run and it is built
// only once.
func testworkerBinary(t *testing.T) string {
	t.Helper()
	b := &testworkerBuild
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users == 0 {
		dir, err := os.MkdirTemp("", "palm-testworker-")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "testworker")
		r := run(t, 5*time.Minute, repoRoot(t), goCommand(t), palmtest.GoBuild(path, "./test/cmd/testworker")...)
		if r.err != nil {
			os.RemoveAll(dir)
			t.Fatalf("building testworker: %v", r)
		}
		b.dir, b.path = dir, path
	}
	b.users++
	path := b.path
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.users--; b.users == 0 {
			os.RemoveAll(b.dir)
			b.dir, b.path = "", ""
		}
	})
	return path
}

// proc is a worker process started by a test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout palmtest.Buffer
	stderr palmtest.Buffer
	exited chan struct{} // closed once the process has exited and its output is read
	err    error         // how it exited (nil for 0); read after exited
}

// launchWorker starts a testworker process named name for the master at
// addr, with further flags, and kills it (by its PID) when the test ends.
// When exits is not nil, the process is sent on it once it has exited, if
// there is room. launchWorker neither fails the test nor stops it, so it may
// be called from any goroutine while the test runs.
func launchWorker(t *testing.T, bin, addr, name string, exits chan<- *proc, flags ...string) (*proc, error) {
	args := append([]string{"--name", name, "--address", addr, "--watch-stdin"}, flags...)
	p := &proc{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	// The process stops when this pipe closes, which the kernel does if
	// the test binary dies without running its clean-ups. Wait closes it.
	if _, err := p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting worker %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
		if exits != nil {
			select {
			case exits <- p:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // an error means it has already exited
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("worker %s (pid %d) has not exited 10 s after SIGKILL", name, p.cmd.Process.Pid)
		}
		if palmtest.HasRace(p.stderr.String()) {
			t.Errorf("worker %s (pid %d) found a data race:\n%s", name, p.cmd.Process.Pid, p.stderr.String())
		} else if t.Failed() {
			t.Logf("worker %s (pid %d) exited: %v\nstdout:\n%s\nstderr:\n%s", name, p.cmd.Process.Pid, p.err, p.stdout.String(), p.stderr.String())
		}
	})
	return p, nil
}

// startWorker starts a worker process as launchWorker does, and fails the
// test if it cannot. Call it from the test's goroutine.
func startWorker(t *testing.T, bin, addr, name string, flags ...string) *proc {
	t.Helper()
	p, err := launchWorker(t, bin, addr, name, nil, flags...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling worker %s: %v", p.name, err)
	}
}

// wait waits until the process has exited, at most timeout, and returns how
// it exited.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("worker %s has not exited after %v", p.name, timeout)
		return nil
	}
}

// killedBy reports whether the process has exited because of sig.
func (p *proc) killedBy(sig syscall.Signal) bool {
	select {
	case <-p.exited:
	default:
		return false
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// logged returns the payloads of the tasks the worker logged with msg
// ("task started" or "handled", with --log-tasks), in the order logged.
func (p *proc) logged(msg string) []string {
	var payloads []string
	key := " " + msg + ": payload="
	for line := range strings.Lines(p.stderr.String()) {
		if _, rest, ok := strings.Cut(line, key); ok {
			payloads = append(payloads, strings.TrimRight(rest, "\n"))
		}
	}
	return payloads
}

// startMaster serves a master named "server" on a free port of 127.0.0.1
// until the test ends, and returns it with its address.
func startMaster(t *testing.T, opts ...master.Option) (*master.Master, string) {
	t.Helper()
	m, err := master.New("server", append([]master.Option{palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m, palmtest.ServeTCP(t, m)
}

// newClient returns a client of the master at addr, closed when the test
// ends.
func newClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.New("server", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitWorkers waits until n workers are connected to m.
func waitWorkers(t *testing.T, m *master.Master, n int) {
	t.Helper()
	palmtest.Eventually(t, 20*time.Second, fmt.Sprintf("%d workers connected (have %d)", n, m.Workers()), func() bool { return m.Workers() == n })
}

// numbered yields the payloads prefix0, prefix1, ... prefix(n-1).
func numbered(prefix string, n int) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for i := range n {
			if !yield(fmt.Appendf(nil, "%s%d", prefix, i)) {
				return
			}
		}
	}
}

// tally is what a job returned: replies by payload and by worker, and the
// per-message errors. It does not touch the test, so a job may fill it in a
// goroutine of its own.
type tally struct {
	replies  int
	byWorker map[string]int
	payloads map[string]int // times each payload was answered
	odd      []string       // replies not of the form "<worker> processed <payload>"
	errs     []*client.MessageError
}

func newTally() *tally {
	return &tally{byWorker: map[string]int{}, payloads: map[string]int{}}
}

// record adds one result of a job to tl. It returns the job's own error
// (one that is not about a single message), or nil.
func (tl *tally) record(reply []byte, err error) error {
	var me *client.MessageError
	switch {
	case errors.As(err, &me):
		tl.errs = append(tl.errs, me)
	case err != nil:
		return err
	default:
		tl.replies++
		worker, payload, ok := strings.Cut(string(reply), " processed ")
		if !ok {
			tl.odd = append(tl.odd, string(reply))
			break
		}
		tl.byWorker[worker]++
		tl.payloads[payload]++
	}
	return nil
}

// checkNoErrors fails the test if a message failed.
func (tl *tally) checkNoErrors(t *testing.T) {
	t.Helper()
	if len(tl.errs) > 0 {
		t.Errorf("%d messages failed, the first: %v", len(tl.errs), tl.errs[0])
	}
}

// checkEachOnce fails the test unless every payload of want was answered
// exactly once and nothing else was.
func (tl *tally) checkEachOnce(t *testing.T, want iter.Seq[[]byte]) {
	t.Helper()
	if len(tl.odd) > 0 {
		t.Errorf("%d unexpected replies, the first: %q", len(tl.odd), tl.odd[0])
	}
	// A loop over slices.Collect, not over want itself: a range-over-func
	// body is a closure of its own, which t.Helper does not cover.
	all := slices.Collect(want)
	missing, n := 0, len(all)
	for _, p := range all {
		switch got := tl.payloads[string(p)]; got {
		case 1:
		case 0:
			if missing++; missing <= 5 {
				t.Errorf("no reply for %q", p)
			}
		default:
			t.Errorf("%d replies for %q", got, p)
		}
	}
	if missing > 5 {
		t.Errorf("... and %d more payloads without a reply", missing-5)
	}
	if len(tl.payloads) != n-missing || tl.replies > n {
		t.Errorf("%d replies for %d distinct payloads; want one each for the %d payloads sent", tl.replies, len(tl.payloads), n)
	}
}

// collect runs a job and tallies what it returns; it fails the test on an
// error of the job as a whole.
func collect(t *testing.T, ctx context.Context, c *client.Client, payloads iter.Seq[[]byte]) *tally {
	t.Helper()
	tl := newTally()
	for reply, err := range c.Job(ctx, "server.foo", payloads) {
		if err := tl.record(reply, err); err != nil {
			t.Fatalf("the job failed after %d replies: %v", tl.replies, err)
		}
	}
	return tl
}

// jobResult is what a job run by startJob returned.
type jobResult struct {
	*tally
	err error // the job's own error, if it ended with one
}

// startJob runs a job in a goroutine of its own and sends what it returned
// on the channel when it ends. Cancel ctx to end it early.
func startJob(ctx context.Context, c *client.Client, payloads iter.Seq[[]byte]) <-chan jobResult {
	done := make(chan jobResult, 1)
	go func() {
		r := jobResult{tally: newTally()}
		for reply, err := range c.Job(ctx, "server.foo", payloads) {
			if err := r.record(reply, err); err != nil {
				r.err = err
			}
		}
		done <- r
	}()
	return done
}

// awaitJob waits for the job of startJob to end, at most timeout, and fails
// the test if it ended with an error of its own.
func awaitJob(t *testing.T, done <-chan jobResult, timeout time.Duration) *tally {
	t.Helper()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("the job ended with an error after %d replies: %v", r.replies, r.err)
		}
		return r.tally
	case <-time.After(timeout):
		t.Fatalf("the job has not ended after %v", timeout)
		return nil
	}
}
