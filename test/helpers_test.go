package test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toolTimeout bounds one run of a tool. It is generous because the first
// run on a fresh machine compiles buf or grpcurl from source.
const toolTimeout = 10 * time.Minute

// repoRoot returns the directory of palm's go.mod, found by walking up from
// the working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod in the working directory or any directory above it")
		}
		dir = parent
	}
}

// goCommand returns the path of the go command; the test fails without it,
// since these tests exist to run the tools it builds.
func goCommand(t testing.TB) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("these tests run buf and grpcurl through the go command, which is not on PATH: %v", err)
	}
	return gocmd
}

// result is what a finished command printed and how it ended.
type result struct {
	stdout, stderr string
	err            error // nil when the command exited 0
	took           time.Duration
}

// String describes the command's output for failure messages.
func (r result) String() string {
	return "exit: " + errString(r.err) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

func errString(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// run runs name with args in dir, bounded by timeout and by the test's own
// deadline, and returns what it printed. It fails the test only when the
// command cannot be started or runs out of time; callers judge the exit.
func run(t *testing.T, timeout time.Duration, dir, name string, args ...string) result {
	t.Helper()
	// Stop a little before go test's -timeout would kill the whole binary,
	// so that the failure names the command and shows its output.
	if deadline, ok := t.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline)-30*time.Second)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	// A child the command started may keep the output pipes open after
	// the command is killed; stop waiting for them after a while.
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), err: err, took: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: ran out of time after %v\n%v", name, strings.Join(args, " "), r.took.Round(time.Millisecond), r)
	case err != nil && !errors.As(err, &exitErr):
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return r
}
