// Package examples_test builds the example programs and runs them as the
// manual does, each in its own process, and checks what they print. The
// programs default to the original's addresses; the tests give them free
// ports instead, through the PALM_ variables the programs read.
package examples_test

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gopalm/palm/internal/palmtest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build compiles every example program once per test run into binDir.
func build(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "palm-examples-")
		if buildErr != nil {
			return
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

type buildError struct{ out []byte }

func (e *buildError) Error() string { return "go build: " + string(e.out) }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proc is a running example program.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	out   bytes.Buffer
	lines chan string
	done  chan struct{}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// binary builds the program of dir (for example "simple/server") once per
// test run, with -race when the tests have it, and returns its path.
func binary(t *testing.T, dir string) string {
	t.Helper()
	build(t)
	// go build -o names each binary after its directory: the example's
	// programs are named server, client, worker..., so build them apart.
	bin := filepath.Join(binDir, strings.ReplaceAll(dir, "/", "-"))
	if _, err := os.Stat(bin); err != nil {
		out, err := exec.Command("go", palmtest.GoBuild(bin, "./"+dir)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", dir, err, out)
		}
	}
	return bin
}

// The variables through which the example programs take their addresses,
// with the original's addresses they replace.
var addressVars = []string{
	"PALM_SERVER",    // 127.0.0.1:5555
	"PALM_MASTER",    // 127.0.0.1:5559
	"PALM_PIPELINE",  // 127.0.0.1:5560
	"PALM_HUB",       // 127.0.0.1:5561
	"PALM_PIPELINE2", // 127.0.0.1:5570
	"PALM_SINK",      // 127.0.0.1:5580
	"PALM_HTTP",      // localhost:8888
}

// testAddresses holds, for each running test, the environment that gives
// its programs their addresses.
var testAddresses sync.Map // *testing.T -> []string

// addresses returns the environment that puts the programs of the test on
// free ports of 127.0.0.1, the same for every program of the test, so that
// no test binds the original's addresses or reaches a component that a user
// runs on them.
func addresses(t *testing.T) []string {
	t.Helper()
	if env, ok := testAddresses.Load(t); ok {
		return env.([]string)
	}
	var env []string
	for _, name := range addressVars {
		// Every listener stays open until all are made, so the ports
		// differ.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		env = append(env, name+"="+lis.Addr().String())
	}
	testAddresses.Store(t, env)
	t.Cleanup(func() { testAddresses.Delete(t) })
	return env
}

// withoutPalmEnv drops the PALM_ variables of the user's environment.
func withoutPalmEnv(env []string) []string {
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PALM_") {
			kept = append(kept, kv)
		}
	}
	return kept
}

// start runs the program built from dir (for example "simple/server") with
// args; its standard output and error are collected together.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary(t, dir), args...), lines: make(chan string, 1000), done: make(chan struct{})}
	p.cmd.Env = append(withoutPalmEnv(os.Environ()), addresses(t)...)
	r, w := io.Pipe()
	p.cmd.Stdout = w
	p.cmd.Stderr = w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{}) // closed once all the program printed is in p.out
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	go func() {
		p.cmd.Wait()
		w.Close()
		<-read
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if palmtest.HasRace(p.output()) {
			t.Errorf("%s found a data race:\n%s", dir, p.output())
		}
	})
	return p
}

// waitFor reads the program's lines until one contains text.
func (p *proc) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("program ended before printing %q:\n%s", text, p.output())
			}
			if strings.Contains(line, text) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q after 30s:\n%s", text, p.output())
		}
	}
}

// stop interrupts the program as Ctrl-C would and waits for it to end.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("program did not stop on SIGINT:\n%s", p.output())
	}
}

// runClient runs a program to its end and returns what it printed.
func runClient(t *testing.T, dir string, args ...string) string {
	t.Helper()
	p := start(t, dir, args...)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not finish:\n%s", dir, p.output())
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("%s failed: %v\n%s", dir, p.cmd.ProcessState, p.output())
	}
	return p.output()
}

// The programs the tests start are built as the tests are: with the race
// detector when go test has -race, so a race in an example fails its test.
func TestProgramsBuiltLikeTests(t *testing.T) {
	self, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("the test binary has no build information")
	}
	prog, err := buildinfo.ReadFile(binary(t, "simple/server"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := setting(prog, "-race"), setting(self, "-race"); got != want {
		t.Errorf("simple/server built with -race=%q; the tests run with -race=%q", got, want)
	}
}

func setting(info *debug.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
