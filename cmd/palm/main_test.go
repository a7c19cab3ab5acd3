package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/pipeline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binPath != "" {
			os.RemoveAll(filepath.Dir(binPath))
		}
		os.Exit(code)
	}))
}

// timeout bounds every eval and kv call of these tests, so that none can
// hang on a server that is not there.
const timeout = "--timeout=10s"

// startServer serves my_server, with the functions foo and boom, on a free
// loopback TCP port until the test ends, and returns it and its address.
func startServer(t *testing.T) (*pipeline.Server, string) {
	t.Helper()
	srv, err := pipeline.NewServer("my_server", palm.WithLogger(palmtest.Logger(t, hclog.Warn)))
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, msg []byte) ([]byte, error) {
		return append([]byte("you sent me "), msg...), nil
	})
	srv.HandleFunc("boom", func(context.Context, []byte) ([]byte, error) {
		return nil, errors.New("boom went the function")
	})
	return srv, palmtest.ServeTCP(t, srv)
}

// closedAddress returns a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// palmCmd runs the command in process with args and stdin.
func palmCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	r := result{code, stdout.String(), stderr.String()}
	t.Logf("palm %q: exit %d\nstdout: %q\nstderr: %q", args, r.code, r.stdout, r.stderr)
	return r
}

// want checks the exit code and, when it is not "", standard output.
func (r result) want(t *testing.T, code int, stdout string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code = %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if stdout != "" && r.stdout != stdout {
		t.Errorf("stdout = %q, want %q", r.stdout, stdout)
	}
}

// wantStderr checks that standard error holds every one of parts.
func (r result) wantStderr(t *testing.T, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr = %q, want it to contain %q", r.stderr, p)
		}
	}
}

func TestEval(t *testing.T) {
	_, addr := startServer(t)
	tests := []struct {
		name       string
		stdin      string
		args       []string
		code       int
		stdout     string
		stderrHas  []string
		stdoutNone bool
	}{
		{name: "payload argument", args: []string{"my_server.foo", "a message"}, stdout: "you sent me a message\n"},
		{name: "payload from stdin", stdin: "a message", args: []string{"my_server.foo"}, stdout: "you sent me a message\n"},
		{name: "payload dash", stdin: "from stdin", args: []string{"my_server.foo", "-"}, stdout: "you sent me from stdin\n"},
		{name: "empty payload", args: []string{"my_server.foo", ""}, stdout: "you sent me \n"},
		{name: "function error", args: []string{"my_server.boom", "x"}, code: 1, stderrHas: []string{"boom went the function", "(Unknown)"}, stdoutNone: true},
		{name: "unknown function", args: []string{"my_server.nope", "x"}, code: 1, stderrHas: []string{"nope", "NotFound"}, stdoutNone: true},
		{name: "malformed function", args: []string{"my_server", "x"}, code: 1, stderrHas: []string{"InvalidArgument"}, stdoutNone: true},
		{name: "other server", args: []string{"--server=other", "my_server.foo", "x"}, code: 1, stderrHas: []string{"FailedPrecondition"}, stdoutNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"eval", "--address", addr, timeout}, tt.args...)
			r := palmCmd(t, tt.stdin, args...)
			r.want(t, tt.code, tt.stdout)
			r.wantStderr(t, tt.stderrHas...)
			if tt.stdoutNone && r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{"frobnicate"},
		{"eval"},
		{"eval", "my_server.foo", "a", "b"},
		{"kv", "get"},
		{"kv", "get", "a", "b"},
		{"kv", "delete"},
		{"kv", "set"},
		{"kv", "set", "k", "v", "w"},
		{"kv", "keys", "a", "b"},
		{"kv", "frobnicate"},
		{"demo", "extra"},
		{"--no-such-flag", "demo"},
		{"eval", "--timeout=soon", "my_server.foo", "x"},
		{"--log-level=loud", "demo"},
		{"--log-level=loud", "eval", "--timeout=1s", "my_server.foo", "x"},
		{"kv", "--timeout=1s", "--log-level=loud", "get", "k"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := palmCmd(t, "", args...)
			r.want(t, 2, "")
			r.wantStderr(t, "palm: ", "palm --help")
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args  []string
		verbs []string
	}{
		{[]string{"--help"}, []string{"demo", "eval", "job", "kv", "health", "info", "server", "pipeline", "sink", "master", "hub", "worker"}},
		{nil, []string{"demo", "eval", "kv"}},
		{[]string{"help", "exec"}, []string{"once", "lines", "frames", "status byte", "--exec-timeout", "process group", "--max-message-size"}},
		{[]string{"server", "--help"}, []string{"--listen", "--exec", "--exec-mode", "--concurrency", "--pipelined", "--cert", "--client-auth", "--tokens", "--metrics-address", "--max-message-size", "--keepalive", "Examples:"}},
		{[]string{"pipeline", "--help"}, []string{"--from", "--listen", "--exec", "--pipelined", "Examples:"}},
		{[]string{"sink", "--help"}, []string{"--from", "--listen", "--exec", "Examples:"}},
		{[]string{"master", "--help"}, []string{"--listen", "--pipelined", "--metrics-address", "Examples:"}},
		{[]string{"hub", "--help"}, []string{"--from", "--listen", "Examples:"}},
		{[]string{"worker", "--help"}, []string{"--address", "--exec", "--exec-timeout", "--stop-timeout", "--concurrency", "--cacert", "--token", "--keepalive", "--keepalive-timeout", "--metrics-address", "Examples:"}},
		{[]string{"job", "--help"}, []string{"--length-delimited", "--messages", "--sub-address", "--progress", "Examples:"}},
		{[]string{"info", "--help"}, []string{"--json", "Examples:"}},
		{[]string{"health", "--help"}, []string{"--service", "Examples:"}},
		{[]string{"kv", "--help"}, []string{"get", "set", "delete", "keys"}},
		{[]string{"kv"}, []string{"get", "set", "delete", "keys"}},
		{[]string{"eval", "--help"}, []string{"--address", "--timeout"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := palmCmd(t, "", tt.args...)
			r.want(t, 0, "")
			for _, v := range tt.verbs {
				if !strings.Contains(r.stdout, v) {
					t.Errorf("help does not mention %q:\n%s", v, r.stdout)
				}
			}
		})
	}
}

func TestKV(t *testing.T) {
	srv, addr := startServer(t)
	kv := func(t *testing.T, args ...string) result {
		t.Helper()
		return palmCmd(t, "", append([]string{"kv", "--address", addr, timeout}, args...)...)
	}

	kv(t, "set", "k", "v").want(t, 0, "k\n")
	kv(t, "get", "k").want(t, 0, "v\n")

	r := kv(t, "get", "missing")
	r.want(t, 1, "")
	r.wantStderr(t, "missing", "NotFound")
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}

	kv(t, "delete", "k").want(t, 0, "deleted\n")
	kv(t, "delete", "k").want(t, 0, "not found\n")
	kv(t, "get", "k").want(t, 1, "")

	// Keys whose names look like usage words are still cache errors.
	r = kv(t, "get", "flag")
	r.want(t, 1, "")
	r.wantStderr(t, "NotFound")

	r = palmCmd(t, "from stdin", "kv", "--address", addr, timeout, "set", "piped")
	r.want(t, 0, "piped\n")
	kv(t, "get", "piped").want(t, 0, "from stdin\n")

	r = kv(t, "set", "", "generated")
	r.want(t, 0, "")
	key := strings.TrimSuffix(r.stdout, "\n")
	if key == "" || strings.Contains(key, "\n") {
		t.Fatalf("kv set \"\" printed %q, want one generated key", r.stdout)
	}
	kv(t, "get", key).want(t, 0, "generated\n")

	for _, k := range []string{"b", "a", "c/1", "c/0"} {
		kv(t, "set", k, "x").want(t, 0, k+"\n")
	}
	want := []string{"a", "b", "c/0", "c/1", "piped", key}
	slices.Sort(want)
	kv(t, "keys").want(t, 0, strings.Join(want, "\n")+"\n")
	kv(t, "keys", "c/").want(t, 0, "c/0\nc/1\n")
	kv(t, "keys", "zzz").want(t, 0, "")

	// With --session, keys are stored under the session's name and listed
	// without it.
	palmCmd(t, "", "--session", "s", "kv", "--address", addr, timeout, "set", "k", "session value").want(t, 0, "k\n")
	got, err := srv.Cache().Get(t.Context(), "s.k")
	if err != nil || string(got) != "session value" {
		t.Errorf("store Get(s.k) = %q, %v; want %q", got, err, "session value")
	}
	if _, err := srv.Cache().Get(t.Context(), "k"); err == nil {
		t.Errorf("store Get(k) succeeded; want the session's key only")
	}
	palmCmd(t, "", "--session", "s", "kv", "--address", addr, timeout, "get", "k").want(t, 0, "session value\n")
	palmCmd(t, "", "--session", "s", "kv", "--address", addr, timeout, "keys").want(t, 0, "k\n")
	kv(t, "get", "s.k").want(t, 0, "session value\n")
}

func TestEnvironment(t *testing.T) {
	_, addr := startServer(t)

	t.Run("PALM_ADDRESS", func(t *testing.T) {
		t.Setenv("PALM_ADDRESS", addr)
		palmCmd(t, "", "eval", timeout, "my_server.foo", "a message").want(t, 0, "you sent me a message\n")
		palmCmd(t, "", "kv", timeout, "set", "k", "v").want(t, 0, "k\n")
		palmCmd(t, "", "kv", timeout, "get", "k").want(t, 0, "v\n")
	})
	t.Run("flag wins", func(t *testing.T) {
		t.Setenv("PALM_ADDRESS", closedAddress(t))
		// Were the environment used, the call would wait for the closed
		// port until the short timeout and fail.
		palmCmd(t, "", "eval", "--timeout=5s", "--address", addr, "my_server.foo", "a message").want(t, 0, "you sent me a message\n")
		palmCmd(t, "", "kv", "--timeout=5s", "-a", addr, "get", "k").want(t, 0, "v\n")
	})
	t.Run("PALM_ADDRESS unreachable", func(t *testing.T) {
		closed := closedAddress(t)
		t.Setenv("PALM_ADDRESS", closed)
		r := palmCmd(t, "", "eval", "--timeout=10s", "my_server.foo", "a message")
		r.want(t, 1, "")
		r.wantStderr(t, closed, "nothing listens", "Unavailable")
	})
	t.Run("PALM_TIMEOUT", func(t *testing.T) {
		t.Setenv("PALM_ADDRESS", closedAddress(t))
		t.Setenv("PALM_TIMEOUT", "200ms")
		t.Setenv("PALM_WAIT", "1m")
		r := palmCmd(t, "", "eval", "my_server.foo", "a message")
		r.want(t, 1, "")
		r.wantStderr(t, "DeadlineExceeded")
	})
	t.Run("PALM_SESSION", func(t *testing.T) {
		t.Setenv("PALM_SESSION", "env")
		palmCmd(t, "", "kv", timeout, "-a", addr, "set", "k", "in session").want(t, 0, "k\n")
		palmCmd(t, "", "kv", timeout, "-a", addr, "--session", "other", "get", "k").want(t, 1, "")
		palmCmd(t, "", "kv", timeout, "-a", addr, "get", "k").want(t, 0, "in session\n")
	})
	t.Run("invalid PALM_TIMEOUT", func(t *testing.T) {
		t.Setenv("PALM_TIMEOUT", "soon")
		r := palmCmd(t, "", "eval", "-a", addr, "my_server.foo", "x")
		r.want(t, 2, "")
		r.wantStderr(t, "PALM_TIMEOUT")
	})
}

// checkDemo checks the demo's output: ten replies, from both workers.
func checkDemo(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("demo exited %d:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		if l != "worker1 processed a message" && l != "worker2 processed a message" {
			t.Fatalf("demo printed %q", r.stdout)
		}
		seen[l] = true
	}
	if len(lines) != 10 || len(seen) != 2 {
		t.Fatalf("demo printed %d replies from %d workers:\n%s", len(lines), len(seen), r.stdout)
	}
	r.wantStderr(t, "worker joined")
}

func TestDemoInProcess(t *testing.T) {
	checkDemo(t, palmCmd(t, "", "demo"))
}

// TestBinary builds the command and runs it as its own process.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "palm")
	build := exec.CommandContext(t.Context(), goTool, palmtest.GoBuild(bin, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	palmBin := func(t *testing.T, args ...string) result {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Env = withoutPalmEnv(os.Environ())
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("running palm %q: %v", args, err)
		}
		r := result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
		t.Logf("palm %q: exit %d\nstdout: %q\nstderr: %q", args, r.code, r.stdout, r.stderr)
		return r
	}

	t.Run("demo", func(t *testing.T) {
		checkDemo(t, palmBin(t, "demo"))
	})
	t.Run("help", func(t *testing.T) {
		r := palmBin(t, "--help")
		r.want(t, 0, "")
		for _, v := range []string{"demo", "eval", "kv"} {
			if !strings.Contains(r.stdout, v) {
				t.Errorf("palm --help does not mention %q:\n%s", v, r.stdout)
			}
		}
	})
	t.Run("kv help", func(t *testing.T) {
		r := palmBin(t, "kv", "--help")
		r.want(t, 0, "")
		for _, v := range []string{"get", "set", "delete", "keys"} {
			if !strings.Contains(r.stdout, v) {
				t.Errorf("palm kv --help does not mention %q:\n%s", v, r.stdout)
			}
		}
	})
	t.Run("usage error", func(t *testing.T) {
		palmBin(t, "frobnicate").want(t, 2, "")
	})
}

// withoutPalmEnv returns env without the PALM_ variables, so that the
// environment the tests run in cannot change what the command does.
func withoutPalmEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PALM_") {
			out = append(out, kv)
		}
	}
	return out
}
