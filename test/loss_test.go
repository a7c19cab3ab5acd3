//go:build unix

package test

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
)

// startStage builds test/cmd/teststage and starts it as a stage named last
// that subscribes to topic at from; it returns the process and the address
// it serves on, and kills it (by its PID) when the test ends.
func startStage(t *testing.T, from, topic string) (*exec.Cmd, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "teststage")
	if r := run(t, 5*time.Minute, repoRoot(t), goCommand(t), "build", "-o", bin, "./test/cmd/teststage"); r.err != nil {
		t.Fatalf("building teststage: %v", r)
	}
	cmd := exec.Command(bin, "--name", "last", "--from", from, "--topic", topic, "--watch-stdin")
	var stderr palmtest.Buffer
	cmd.Stderr = &stderr
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("the stage (pid %d) has not exited 10 s after SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("stage stderr:\n%s", stderr.String())
		}
	})
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, "listening on ")
		if !ok {
			t.Fatalf("the stage printed %q", line)
		}
		return cmd, addr
	case <-exited:
		t.Fatalf("the stage exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the stage did not say where it listens within 30 s")
	}
	return nil, ""
}

// A stage paused with SIGSTOP for longer than the master's keepalive: the
// master cuts its subscription, and every message it could not hand over
// (queued for the stage, on its way, or published while nobody subscribed)
// reaches the client as a DataLoss error for that message; the rest are
// results, each message has exactly one answer, and the Job ends.
func TestStoppedStageLossIsTold(t *testing.T) {
	m, addr := startMaster(t, master.Pipelined(), palm.WithKeepalive(300*time.Millisecond, 300*time.Millisecond))
	startWorkers(t, addr, 2)
	waitWorkers(t, m, 2)
	stage, stageAddr := startStage(t, addr, "server")

	probe, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	info := palmv1.NewInfoServiceClient(probe)
	counter := func(name string) uint64 {
		resp, err := info.Info(context.Background(), &palmv1.InfoRequest{})
		if err != nil {
			return 0
		}
		return resp.GetCounters()[name]
	}
	palmtest.Eventually(t, 20*time.Second, "the stage subscribed to the master", func() bool { return counter("subscribers") == 1 })

	c, err := client.New("server", addr, quietLog(t), client.SubAddress(stageAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := shortCtx(t, jobTimeout)
	const n = 5000
	answers := map[uint64]int{}
	results, lost := 0, 0
	stopped, resumed := false, make(chan struct{})
	for reply, err := range c.Job(ctx, "server.foo last.foo", numbered("m", n)) {
		var me *client.MessageError
		switch {
		case err == nil:
			results++
			_, k, ok := strings.Cut(string(reply), " processed m")
			seq, err := strconv.ParseUint(k, 10, 64)
			if !ok || err != nil {
				t.Fatalf("reply %q", reply)
			}
			answers[seq+1]++
		case errors.As(err, &me):
			answers[me.Sequence]++
			if status.Code(me.Err) != codes.DataLoss || !strings.Contains(err.Error(), `topic "server"`) {
				t.Fatalf("message %d: %v; want DataLoss naming the topic", me.Sequence, err)
			}
			lost++
		default:
			t.Fatalf("the job failed after %d results and %d losses: %v", results, lost, err)
		}
		if results == 200 && !stopped {
			stopped = true
			if err := stage.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			go func() {
				// Resume it once the master publishes to nobody: its
				// subscription was cut.
				defer close(resumed)
				for ctx.Err() == nil && counter("published_dropped") == 0 {
					select {
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
				}
				_ = stage.Process.Signal(syscall.SIGCONT)
			}()
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the job hung until its deadline: %d results, %d losses of %d", results, lost, n)
	}
	<-resumed
	if results+lost != n || len(answers) != n {
		t.Fatalf("%d results and %d losses; want one answer for each of the %d messages", results, lost, n)
	}
	for seq, k := range answers {
		if k != 1 {
			t.Fatalf("message %d was answered %d times", seq, k)
		}
	}
	if lost == 0 || results <= 200 {
		t.Fatalf("%d results and %d losses: the stop lost nothing, or everything", results, lost)
	}
	t.Logf("%d results, %d messages reported lost; the master dropped %d", results, lost, counter("published_dropped"))
}
