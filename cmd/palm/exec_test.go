package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopalm/palm/internal/palmtest"
)

// hangingCommand is an --exec command that never answers: a shell that
// records its pid and its background child's in pids, and waits on a
// foreground child.
func hangingCommand(pids string) string {
	return "foo=sleep 300 & echo $$ $! >> " + pids + "; sleep 300"
}

// A worker whose command never answers fails the message after
// --exec-timeout: the client hears why, the job ends, and the command's
// processes are gone.
func TestExecTimeoutFailsTheMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs processes; skipped with -short")
	}
	addr := palmtest.FreeAddr(t)
	m := startPalm(t, "master", "server", "--listen", addr)
	m.waitFor(t, "serving")
	pids := filepath.Join(t.TempDir(), "pids")
	startPalm(t, "worker", "worker1", "--master", addr, "--exec-timeout", "1s", "--exec", hangingCommand(pids))
	m.waitFor(t, "worker joined")

	eval := exec.Command(palmBinary(t), "eval", "--address", addr, "--timeout", "60s", "server.foo", "x")
	eval.Env = withoutPalmEnv(os.Environ())
	start := time.Now()
	out, err := eval.CombinedOutput()
	took := time.Since(start)
	if code := eval.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "--exec-timeout") || !strings.Contains(string(out), "DeadlineExceeded") {
		t.Fatalf("palm eval: exit %d (%v), output %q; want 1 and DeadlineExceeded naming --exec-timeout", code, err, out)
	}
	t.Logf("palm eval failed after %v: %s", took, bytes.TrimSpace(out))
	if took < time.Second || took > 30*time.Second {
		t.Errorf("palm eval failed after %v; want about the 1s timeout", took)
	}
	palmtest.CheckGone(t, palmtest.RecordedPIDs(t, pids, 1)[0])

	job := exec.Command(palmBinary(t), "job", "--address", addr, "--timeout", "60s", "server.foo")
	job.Env = withoutPalmEnv(os.Environ())
	job.Stdin = strings.NewReader("a\nb\n")
	var stdout, stderr bytes.Buffer
	job.Stdout, job.Stderr = &stdout, &stderr
	err = job.Run()
	if code := job.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "2 of 2 messages failed") || !strings.Contains(stderr.String(), "--exec-timeout") {
		t.Fatalf("palm job: exit %d (%v), stdout %q, stderr %q; want exit 1, both messages failed for --exec-timeout", code, err, stdout.String(), stderr.String())
	}
	for _, started := range palmtest.RecordedPIDs(t, pids, 3)[1:] {
		palmtest.CheckGone(t, started)
	}

	// A server, its timeout from the flag's PALM_ twin.
	addr = palmtest.FreeAddr(t)
	pids = filepath.Join(t.TempDir(), "pids")
	s := startPalmEnv(t, []string{"PALM_EXEC_TIMEOUT=1s"}, "server", "my_server", "--listen", addr, "--exec", hangingCommand(pids))
	s.waitFor(t, "serving")
	eval = exec.Command(palmBinary(t), "eval", "--address", addr, "--timeout", "60s", "my_server.foo", "x")
	eval.Env = withoutPalmEnv(os.Environ())
	out, err = eval.CombinedOutput()
	if code := eval.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "within 1s") || !strings.Contains(string(out), "DeadlineExceeded") {
		t.Fatalf("palm eval of a server: exit %d (%v), output %q; want 1 and DeadlineExceeded after 1s", code, err, out)
	}
	palmtest.CheckGone(t, palmtest.RecordedPIDs(t, pids, 1)[0])
}

// SIGTERM to a component whose command never answers: the component
// waits its stop timeout for the message, then kills the command's process
// group and exits, leaving no process behind.
func TestStopWithAHangingCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs processes; skipped with -short")
	}
	const stopTimeout = 3 * time.Second
	for _, kind := range []string{"worker", "server"} {
		t.Run(kind, func(t *testing.T) {
			addr := palmtest.FreeAddr(t)
			pids := filepath.Join(t.TempDir(), "pids")
			var c *component
			function := "server.foo"
			if kind == "worker" {
				m := startPalm(t, "master", "server", "--listen", addr)
				m.waitFor(t, "serving")
				c = startPalm(t, "worker", "worker1", "--master", addr, "--stop-timeout", stopTimeout.String(), "--exec", hangingCommand(pids))
				m.waitFor(t, "worker joined")
			} else {
				c = startPalm(t, "server", "my_server", "--listen", addr, "--stop-timeout", stopTimeout.String(), "--exec", hangingCommand(pids))
				c.waitFor(t, "serving")
				function = "my_server.foo"
			}

			ctx, cancel := context.WithCancel(context.Background())
			eval := exec.CommandContext(ctx, palmBinary(t), "eval", "--address", addr, "--timeout", "60s", function, "x")
			eval.Env = withoutPalmEnv(os.Environ())
			if err := eval.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); eval.Wait() }()
			running := palmtest.RecordedPIDs(t, pids, 1)[0]

			start := time.Now()
			c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.done:
			case <-time.After(30 * time.Second):
				t.Fatalf("palm %s has not stopped 30s after SIGTERM:\n%s", kind, c.output())
			}
			// The bound is the stop timeout, and a margin for a loaded machine.
			took, bound := time.Since(start), stopTimeout+2500*time.Millisecond
			t.Logf("palm %s stopped %v after SIGTERM", kind, took)
			if took > bound {
				t.Errorf("palm %s stopped %v after SIGTERM; want within %v (its stop timeout and a margin)", kind, took, bound)
			}
			palmtest.CheckGone(t, running)
		})
	}
}

// A 3 MiB line through `cat` in lines mode answers (the payload is written
// while the answer is read), and a command that prints 600 MB fails its
// message with ResourceExhausted while the server's memory stays small
// (its answer is read only up to the message size limit).
func TestExecLargeAndOversizeAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs processes; skipped with -short")
	}
	addr := palmtest.FreeAddr(t)
	s := startPalm(t, "server", "my_server", "--listen", addr, "--exec-mode", "lines",
		"--exec", "foo=cat", "--exec", "big=read l; head -c 600000000 /dev/zero")
	s.waitFor(t, "serving")

	line := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	eval := exec.Command(palmBinary(t), "eval", "--address", addr, "--timeout", "20s", "my_server.foo", "-")
	eval.Env = withoutPalmEnv(os.Environ())
	eval.Stdin = bytes.NewReader(line)
	var stdout, stderr bytes.Buffer
	eval.Stdout, eval.Stderr = &stdout, &stderr
	if err := eval.Run(); err != nil || !bytes.Equal(bytes.TrimSuffix(stdout.Bytes(), []byte("\n")), line) {
		t.Errorf("palm eval of a 3 MiB line: %v, %d bytes back; stderr %q", err, stdout.Len(), stderr.String())
	}

	eval = exec.Command(palmBinary(t), "eval", "--address", addr, "--timeout", "60s", "my_server.big", "x")
	eval.Env = withoutPalmEnv(os.Environ())
	out, err := eval.CombinedOutput()
	if code := eval.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "ResourceExhausted") || !strings.Contains(string(out), "--max-message-size") {
		t.Fatalf("palm eval of 600 MB: exit %d (%v), output %q; want 1 and ResourceExhausted naming --max-message-size", code, err, out)
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.cmd.Process.Pid), "status"))
	if err != nil {
		t.Skipf("no /proc to measure the server's memory in: %v", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			t.Logf("the server's peak memory: %d MiB", kb>>10)
			if kb<<10 > 256<<20 {
				t.Errorf("the server's peak memory is %d MiB; want under 256 MiB (the answer is read only up to 4 MiB)", kb>>10)
			}
		}
	}
}
