//go:build unix

package test

import (
	"context"
	"fmt"
	"iter"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
)

// The reliability promises of issue 3, each kept by a master in the test's
// process and worker processes (test/cmd/testworker) that the tests kill,
// interrupt and start at awkward moments, all over TCP on 127.0.0.1.

// jobTimeout bounds every job and call of these tests.
const jobTimeout = 30 * time.Second

// A worker killed with SIGKILL in the middle of a job loses nothing: the
// tasks it held go to the other worker, and every message gets exactly one
// reply.
func TestWorkerKilledMidJob(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, addr := startMaster(t, palm.WithMetrics(reg))
	victim := startWorker(t, bin, addr, "victim", "--credit", "4", "--delay", "2ms")
	startWorker(t, bin, addr, "survivor", "--credit", "4", "--delay", "2ms")
	waitWorkers(t, m, 2)

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("", 1000)
	tl := newTally()
	var atKill map[string]int
	for reply, err := range newClient(t, addr).Job(ctx, "server.foo", payloads) {
		if err := tl.record(reply, err); err != nil {
			t.Fatalf("the job failed after %d replies: %v", tl.replies, err)
		}
		if tl.replies == 100 && atKill == nil {
			victim.signal(t, syscall.SIGKILL)
			atKill = map[string]int{"victim": tl.byWorker["victim"], "survivor": tl.byWorker["survivor"]}
		}
	}
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)
	if err := victim.wait(t, 10*time.Second); !victim.killedBy(syscall.SIGKILL) {
		t.Errorf("the victim exited with %v, not by SIGKILL", err)
	}
	if atKill["victim"] == 0 {
		t.Errorf("the victim had answered nothing before it was killed: %v", atKill)
	}
	if tl.byWorker["survivor"] <= atKill["survivor"] {
		t.Errorf("the survivor answered nothing after the kill: %v at the kill, %v at the end", atKill, tl.byWorker)
	}
	t.Logf("replies by worker: %v at the kill, %v at the end", atKill, tl.byWorker)
	if n := gathered(t, reg, "palm_tasks_redelivered_total"); n < 1 || n > 4 {
		t.Errorf("palm_tasks_redelivered_total = %v; the victim held 1 to 4 tasks (its credit)", n)
	}
}

// gathered returns the value of the one sample of the metric name in reg.
func gathered(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A message that kills every worker that takes it fails alone, with
// Aborted, after MaxAttempts (3) workers died of it; every other message is
// answered and the job ends. A supervisor restarts the dead workers, as a
// process manager would.
func TestPoisonMessageFailsAlone(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	m, addr := startMaster(t)
	const maxRestarts = 6
	exits := make(chan *proc, maxRestarts+2)
	flags := []string{"--credit", "4", "--delay", "2ms"}
	for i := range 2 {
		if _, err := launchWorker(t, bin, addr, fmt.Sprint("worker", i), exits, flags...); err != nil {
			t.Fatal(err)
		}
	}
	waitWorkers(t, m, 2)

	// The supervisor keeps two workers alive, restarting one each time a
	// worker process dies, at most maxRestarts times.
	var deaths atomic.Int32
	stop, supervised := make(chan struct{}), make(chan error, 1)
	go func() {
		for started := 2; ; started++ {
			select {
			case <-stop:
				supervised <- nil
				return
			case p := <-exits:
				if !p.killedBy(syscall.SIGKILL) {
					supervised <- fmt.Errorf("worker %s exited with %v, not by SIGKILL", p.name, p.err)
					return
				}
				deaths.Add(1)
				if started-2 == maxRestarts {
					supervised <- fmt.Errorf("%d workers died; gave up restarting them", deaths.Load())
					return
				}
				if _, err := launchWorker(t, bin, addr, fmt.Sprint("worker", started), exits, flags...); err != nil {
					supervised <- err
					return
				}
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-supervised; err != nil {
			t.Errorf("supervisor: %v", err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := func(yield func([]byte) bool) {
		for i := range 100 {
			p := fmt.Sprint(i)
			if i == 50 {
				p = "poison"
			}
			if !yield([]byte(p)) {
				return
			}
		}
	}
	tl := collect(t, ctx, newClient(t, addr), payloads)
	if len(tl.errs) != 1 {
		t.Fatalf("%d failed messages, want 1 (the poison): %v", len(tl.errs), tl.errs)
	}
	if e := tl.errs[0]; e.Sequence != 51 || status.Code(e) != codes.Aborted {
		t.Errorf("the poison's failure: message %d, code %v (%v); want message 51 with Aborted", e.Sequence, status.Code(e), e)
	}
	tl.checkEachOnce(t, func(yield func([]byte) bool) {
		for p := range payloads {
			if string(p) != "poison" && !yield(p) {
				return
			}
		}
	})
	palmtest.Eventually(t, 10*time.Second, "3 workers dead of the poison", func() bool { return deaths.Load() >= 3 })
	if n := deaths.Load(); n != 3 {
		t.Errorf("%d workers died; want 3, one per attempt", n)
	}
}

// A worker that joins while a job waits for a slow worker takes tasks at
// once: it ends up answering most of the job.
func TestWorkerJoinsMidJob(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	m, addr := startMaster(t)
	startWorker(t, bin, addr, "slow", "--credit", "1", "--delay", "20ms")
	waitWorkers(t, m, 1)

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("", 300)
	tl := newTally()
	for reply, err := range newClient(t, addr).Job(ctx, "server.foo", payloads) {
		if err := tl.record(reply, err); err != nil {
			t.Fatalf("the job failed after %d replies: %v", tl.replies, err)
		}
		if tl.replies == 10 {
			startWorker(t, bin, addr, "late", "--credit", "4", "--delay", "20ms")
		}
	}
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)
	// Alone, "slow" answers 50 messages a second and "late" 200: had
	// "late" not been given the waiting tasks as soon as it came, it would
	// not have answered most of them.
	if tl.byWorker["late"] < 150 {
		t.Errorf("the late worker answered %d of 300 messages; want at least 150: %v", tl.byWorker["late"], tl.byWorker)
	}
	t.Logf("replies by worker: %v", tl.byWorker)
}

// With no worker connected, and the master told to wait for one, messages
// wait at the master and run as soon as a worker connects; an Eval whose
// deadline passes first fails with DeadlineExceeded, and its task never
// reaches a worker.
func TestNoWorkerTasksWait(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	var queued atomic.Int32 // the job's messages the master has taken
	m, addr := startMaster(t, master.WaitForWorkers(time.Minute), master.Scatter(func(msg *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage] {
		if strings.HasPrefix(string(msg.GetPayload()), "job-") {
			queued.Add(1)
		}
		return func(yield func(*palmv1.PalmMessage) bool) { yield(msg) }
	}))
	c := newClient(t, addr)

	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	if _, err := c.Eval(short, "server.foo", []byte("expired")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("an Eval with no worker: %v; want DeadlineExceeded", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("job-", 20)
	done := startJob(ctx, c, payloads)
	palmtest.Eventually(t, 10*time.Second, "the master took the job's 20 messages", func() bool { return queued.Load() == 20 })
	if n := m.Workers(); n != 0 {
		t.Fatalf("%d workers connected; want none yet", n)
	}
	w := startWorker(t, bin, addr, "joiner", "--credit", "1", "--log-tasks")
	tl := awaitJob(t, done, jobTimeout+5*time.Second)
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)
	// The worker takes one task at a time, oldest first: had it been given
	// the expired Eval's task, it would have logged it before these.
	palmtest.Eventually(t, 10*time.Second, "the worker logged the job's 20 tasks", func() bool { return len(w.logged("handled")) >= 20 })
	if got := w.logged("task started"); slices.Contains(got, "expired") || len(got) != 20 {
		t.Errorf("the worker ran %d tasks, %q; want the job's 20, and not the expired Eval's", len(got), got)
	}
}

// When a client goes away, the master drops its queued tasks: no worker
// spends time on them, and the next client is served at once.
func TestClientDisconnectDropsQueuedTasks(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	m, addr := startMaster(t)
	w := startWorker(t, bin, addr, "w", "--credit", "1", "--delay", "50ms", "--log-tasks")
	waitWorkers(t, m, 1)

	// 500 messages at 50 ms each: 25 s of work, abandoned after the first
	// reply.
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	for _, err := range newClient(t, addr).Job(ctx, "server.foo", numbered("", 500)) {
		if err != nil {
			t.Fatalf("the first reply: %v", err)
		}
		break // ends the job: the client cancels its stream
	}

	// Had the master kept the 499 tasks, this Eval would wait behind them.
	evalCtx, cancelEval := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelEval()
	if got, err := newClient(t, addr).Eval(evalCtx, "server.foo", []byte("next")); err != nil || string(got) != "w processed next" {
		t.Fatalf("an Eval from another client after the first went away: %q, %v; want an answer within 5 s", got, err)
	}
	palmtest.Eventually(t, 10*time.Second, "the worker logged the Eval's task", func() bool {
		return slices.Contains(w.logged("handled"), "next")
	})
	started := w.logged("task started")
	if len(started) >= 50 {
		t.Errorf("the worker started %d tasks; want far fewer than the 500 of the abandoned job", len(started))
	}
	t.Logf("the worker started %d tasks: %q", len(started), started)
}

// A slow worker never holds more tasks than its credit, so a fast worker
// takes the rest of the job.
func TestSlowWorkerHoldsOnlyItsCredit(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	m, addr := startMaster(t)
	startWorker(t, bin, addr, "slow", "--credit", "2", "--delay", "100ms")
	startWorker(t, bin, addr, "fast", "--credit", "8")
	waitWorkers(t, m, 2)

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("", 500)
	tl := collect(t, ctx, newClient(t, addr), payloads)
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)
	// Round-robin by credit hands the slow worker its 2 tasks at once, and
	// one more each time it finishes one (every 50 ms on average); the fast
	// worker answers the rest meanwhile.
	if slow := tl.byWorker["slow"]; slow < 1 || slow >= 50 {
		t.Errorf("the slow worker answered %d of 500 messages; want some, and under 10%%: %v", slow, tl.byWorker)
	}
	t.Logf("replies by worker: %v", tl.byWorker)
}

// A client that reads its replies slowly still gets every one: the master
// holds them back, it drops none.
func TestSlowClientGetsEveryReply(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	m, addr := startMaster(t)
	startWorker(t, bin, addr, "w1", "--credit", "4")
	startWorker(t, bin, addr, "w2", "--credit", "4")
	waitWorkers(t, m, 2)

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("", 3000)
	tl := newTally()
	for reply, err := range newClient(t, addr).Job(ctx, "server.foo", payloads) {
		if err := tl.record(reply, err); err != nil {
			t.Fatalf("the job failed after %d replies: %v", tl.replies, err)
		}
		time.Sleep(time.Millisecond) // a slow reader: load, not a wait for anything
	}
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)
}

// A worker interrupted (SIGINT) while it holds tasks finishes them, sends
// their replies, and exits 0.
func TestGracefulWorkerStop(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	m, addr := startMaster(t)
	w := startWorker(t, bin, addr, "w", "--credit", "4", "--delay", "300ms", "--log-tasks")
	waitWorkers(t, m, 1)

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("", 4)
	done := startJob(ctx, newClient(t, addr), payloads)
	palmtest.Eventually(t, 10*time.Second, "the worker holds the 4 tasks", func() bool { return len(w.logged("task started")) == 4 })
	w.signal(t, syscall.SIGINT)
	tl := awaitJob(t, done, jobTimeout+5*time.Second)
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)
	if err := w.wait(t, 15*time.Second); err != nil {
		t.Errorf("the worker exited with %v; want 0", err)
	}
	if out := w.stdout.String(); out != "stopped\n" {
		t.Errorf("the worker printed %q; want \"stopped\\n\"", out)
	}
}

// A master whose context ends reports NOT_SERVING, refuses new messages
// with Unavailable, sends the replies of the messages its workers hold, and
// Serve returns nil within the stop timeout. The worker outlives it,
// waiting to connect again.
func TestGracefulMasterStop(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	const stopTimeout = 5 * time.Second
	m, err := master.New("server", palm.WithLogger(palmtest.Logger(t, hclog.Warn)), palm.WithStopTimeout(stopTimeout))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	serveCtx, stopMaster := context.WithCancel(context.Background())
	var (
		serveErr error
		returned time.Time
	)
	served := make(chan struct{})
	go func() {
		serveErr = m.Serve(serveCtx, lis)
		returned = time.Now()
		close(served)
	}()
	t.Cleanup(func() {
		stopMaster()
		select {
		case <-served: // the test checks serveErr
		case <-time.After(2 * stopTimeout):
			t.Errorf("Serve has not returned %v after its context ended", 2*stopTimeout)
		}
	})

	// The tasks take 500 ms: the master drains for that long.
	w := startWorker(t, bin, addr, "w", "--credit", "4", "--delay", "500ms", "--log-tasks")
	waitWorkers(t, m, 1)
	c := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("", 4)
	done := startJob(ctx, c, payloads)
	palmtest.Eventually(t, 10*time.Second, "the worker holds the 4 tasks", func() bool { return len(w.logged("task started")) == 4 })

	stopMaster()
	stopped := time.Now()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	health := healthpb.NewHealthClient(cc)
	palmtest.Eventually(t, stopTimeout, "the master reports NOT_SERVING", func() bool {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if _, err := c.Eval(ctx, "server.foo", []byte("too late")); status.Code(err) != codes.Unavailable {
		t.Errorf("an Eval while the master stops: %v; want Unavailable", err)
	}

	tl := awaitJob(t, done, jobTimeout+5*time.Second)
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)

	select {
	case <-served:
		if serveErr != nil {
			t.Errorf("Serve: %v; want nil", serveErr)
		}
		if took := returned.Sub(stopped); took > stopTimeout {
			t.Errorf("Serve returned %v after its context ended; want within the stop timeout, %v", took, stopTimeout)
		}
	case <-time.After(2 * stopTimeout):
		t.Fatalf("Serve has not returned %v after its context ended", 2*stopTimeout)
	}
	select {
	case <-w.exited:
		t.Errorf("the worker exited with %v when the master stopped; want it to wait for a master", w.err)
	default:
	}
}

// A worker that stops answering without closing its connection (its
// process stopped with SIGSTOP: the kernel keeps the TCP connection open)
// is noticed by the master's keepalive, well before the default 40 s, and
// the tasks it held go to the other worker: every message gets exactly one
// reply.
func TestStoppedWorkerNoticed(t *testing.T) {
	bin := testworkerBinary(t)
	t.Parallel()
	m, addr := startMaster(t, palm.WithKeepalive(300*time.Millisecond, 300*time.Millisecond))
	victim := startWorker(t, bin, addr, "victim", "--credit", "4", "--delay", "2ms")
	startWorker(t, bin, addr, "survivor", "--credit", "4", "--delay", "2ms")
	waitWorkers(t, m, 2)
	t.Cleanup(func() { victim.signal(t, syscall.SIGCONT) })

	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	payloads := numbered("", 1000)
	tl := newTally()
	for reply, err := range newClient(t, addr).Job(ctx, "server.foo", payloads) {
		if err := tl.record(reply, err); err != nil {
			t.Fatalf("the job failed after %d replies: %v", tl.replies, err)
		}
		if tl.replies == 100 {
			victim.signal(t, syscall.SIGSTOP)
		}
	}
	tl.checkNoErrors(t)
	tl.checkEachOnce(t, payloads)
	palmtest.Eventually(t, 10*time.Second, "the master lets the stopped worker go", func() bool { return m.Workers() == 1 })
	t.Logf("replies by worker: %v", tl.byWorker)
}
