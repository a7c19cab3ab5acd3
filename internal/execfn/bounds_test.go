package execfn

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm/internal/palmtest"
)

// The tests of the bounds: time (Timeout, the caller's context), processes
// (groups killed, nothing left behind) and bytes (MaxOutput, no deadlock).

// callWithin calls f, failing the test if the call has not returned within
// d (an old deadlock would otherwise hang the suite).
func callWithin(t *testing.T, d time.Duration, ctx context.Context, f *Func, payload []byte) ([]byte, error, time.Duration) {
	t.Helper()
	type result struct {
		reply []byte
		err   error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r, err := f.Call(ctx, payload)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		return r.reply, r.err, time.Since(start)
	case <-time.After(d):
		t.Fatalf("the call has not returned after %v", d)
		return nil, nil, 0
	}
}

func wantCode(t *testing.T, err error, code codes.Code, words ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("error %v; want %s", err, code)
	}
	for _, w := range words {
		if !strings.Contains(status.Convert(err).Message(), w) {
			t.Errorf("error %q does not say %q", status.Convert(err).Message(), w)
		}
	}
}

// A command that never answers fails its message after the timeout, and
// its whole process group (the shell, its background child and its
// foreground one) is killed; a long-running mode starts a fresh process
// for the next message.
func TestHangingCommandTimesOut(t *testing.T) {
	for _, mode := range []Mode{Once, Lines, Frames} {
		t.Run(string(mode), func(t *testing.T) {
			pids := filepath.Join(t.TempDir(), "pids")
			cmd := map[Mode]string{
				Once:   `sleep 300 & echo $$ $! >> ` + pids + `; sleep 300`,
				Lines:  `echo $$ >> ` + pids + `; while read l; do if [ "$l" = hang ]; then sleep 300 & sleep 300; fi; echo "got $l"; done`,
				Frames: `echo $$ >> ` + pids + `; EXECFN_FRAMES=1 exec ` + os.Args[0],
			}[mode]
			f := Handler(Spec{"foo", cmd}, mode, 1, hclog.NewNullLogger(), Timeout(500*time.Millisecond))
			defer f.Close()
			_, err, took := callWithin(t, 15*time.Second, context.Background(), f, []byte("hang"))
			wantCode(t, err, codes.DeadlineExceeded, "500ms", "--exec-timeout")
			if took < 500*time.Millisecond {
				t.Errorf("failed after %v, before the timeout", took)
			}
			first := palmtest.RecordedPIDs(t, pids, 1)[0]
			palmtest.CheckGone(t, first)
			if mode == Once {
				return
			}
			reply, err, _ := callWithin(t, 15*time.Second, context.Background(), f, []byte("next"))
			if want := map[Mode]string{Lines: "got next", Frames: "upper:NEXT"}[mode]; err != nil || string(reply) != want {
				t.Fatalf("after the timeout: %q, %v; want %q", reply, err, want)
			}
			if again := palmtest.RecordedPIDs(t, pids, 2)[1]; again[0] == first[0] {
				t.Errorf("the next message went to the killed process %d", first[0])
			}
		})
	}
}

// A message whose context ends (the component stops, the caller goes)
// fails with CANCELED at once, and its command's group is killed.
func TestCancelKillsTheGroup(t *testing.T) {
	for _, mode := range []Mode{Once, Lines} {
		t.Run(string(mode), func(t *testing.T) {
			pids := filepath.Join(t.TempDir(), "pids")
			f := Handler(Spec{"foo", `read l; sleep 300 & echo $$ $! >> ` + pids + `; sleep 300`}, mode, 1, hclog.NewNullLogger())
			defer f.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				palmtest.RecordedPIDs(t, pids, 1)
				cancel()
			}()
			_, err, _ := callWithin(t, 15*time.Second, ctx, f, []byte("x"))
			wantCode(t, err, codes.Canceled, "cancelled", "killed")
			palmtest.CheckGone(t, palmtest.RecordedPIDs(t, pids, 1)[0])
		})
	}
	t.Run("deadline", func(t *testing.T) { // the caller's, shorter than the timeout
		pids := filepath.Join(t.TempDir(), "pids")
		f := Handler(Spec{"foo", `sleep 300 & echo $$ $! >> ` + pids + `; sleep 300`}, Once, 1, hclog.NewNullLogger())
		defer f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err, _ := callWithin(t, 15*time.Second, ctx, f, nil)
		wantCode(t, err, codes.DeadlineExceeded, "deadline passed", "killed")
		palmtest.CheckGone(t, palmtest.RecordedPIDs(t, pids, 1)[0])
	})
}

// Close kills what runs: a once-mode command in flight, and a long-running
// one that does not exit when its input ends, with what it started.
func TestCloseLeavesNothing(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	lines := Handler(Spec{"foo", `sleep 300 & echo $$ $! >> ` + pids + `; while read l; do echo "$l"; done; wait`}, Lines, 1, hclog.NewNullLogger())
	if r, err, _ := callWithin(t, 15*time.Second, context.Background(), lines, []byte("hi")); err != nil || string(r) != "hi" {
		t.Fatalf("%q, %v", r, err)
	}
	closed := make(chan struct{})
	go func() { lines.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close has not returned")
	}
	palmtest.CheckGone(t, palmtest.RecordedPIDs(t, pids, 1)[0])

	pids = filepath.Join(t.TempDir(), "pids")
	once := Handler(Spec{"foo", `sleep 300 & echo $$ $! >> ` + pids + `; sleep 300`}, Once, 1, hclog.NewNullLogger())
	go func() {
		palmtest.RecordedPIDs(t, pids, 1)
		once.Close()
	}()
	_, err, _ := callWithin(t, 15*time.Second, context.Background(), once, nil)
	wantCode(t, err, codes.Unavailable, "shutting down")
	palmtest.CheckGone(t, palmtest.RecordedPIDs(t, pids, 1)[0])
}

// A once-mode command that exits leaving a background process is done;
// the process is killed with its group.
func TestOnceKillsWhatIsLeft(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	f := Handler(Spec{"foo", `sleep 300 >/dev/null 2>&1 & echo $$ $! >> ` + pids + `; echo done`}, Once, 1, hclog.NewNullLogger())
	defer f.Close()
	r, err, _ := callWithin(t, 15*time.Second, context.Background(), f, nil)
	if err != nil || string(r) != "done\n" {
		t.Fatalf("%q, %v", r, err)
	}
	palmtest.CheckGone(t, palmtest.RecordedPIDs(t, pids, 1)[0])
}

// Payload and answer far larger than a pipe's buffer go through every
// mode: the payload is written while the answer is read.
func TestLargeMessages(t *testing.T) {
	payload := bytes.Repeat([]byte("abcdefgh"), 3<<20/8) // 3 MiB
	for _, tc := range []struct {
		mode Mode
		cmd  string
		want []byte
	}{
		{Once, "cat", payload},
		{Lines, "cat", payload},
		{Frames, "EXECFN_FRAMES=1 exec " + os.Args[0], append([]byte("upper:"), bytes.ToUpper(payload)...)},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			f := Handler(Spec{"foo", tc.cmd}, tc.mode, 1, hclog.NewNullLogger(), Timeout(time.Minute))
			defer f.Close()
			for range 2 {
				reply, err, _ := callWithin(t, 30*time.Second, context.Background(), f, payload)
				if err != nil || !bytes.Equal(reply, tc.want) {
					t.Fatalf("%d bytes, %v; want the %d bytes", len(reply), err, len(tc.want))
				}
			}
		})
	}
}

// An answer over the limit fails the message with RESOURCE_EXHAUSTED
// naming the limit and its flag, and is not kept: the bytes allocated
// stay near the limit, however much the command writes.
func TestOversizeAnswer(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		mode Mode
		cmd  string
	}{
		{Once, "head -c 600000000 /dev/zero"},
		{Lines, "read l; head -c 600000000 /dev/zero"},
		{Frames, "EXECFN_FRAMES=1 exec " + os.Args[0]},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			f := Handler(Spec{"foo", tc.cmd}, tc.mode, 1, hclog.NewNullLogger(), MaxOutput(limit))
			defer f.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err, _ := callWithin(t, 30*time.Second, context.Background(), f, []byte("big"))
			runtime.ReadMemStats(&after)
			wantCode(t, err, codes.ResourceExhausted, "1048576 bytes", "--max-message-size")
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("reading the answer allocated %d MiB; want a few times the %d MiB limit at most", grew>>20, limit>>20)
			}
			if tc.mode == Frames { // the frame is skipped, the process kept
				if r, err, _ := callWithin(t, 15*time.Second, context.Background(), f, []byte("after")); err != nil || string(r) != "upper:AFTER" {
					t.Errorf("after an oversize frame: %q, %v", r, err)
				}
			}
		})
	}
	// An answer of exactly the limit is fine.
	f := Handler(Spec{"foo", fmt.Sprintf("head -c %d /dev/zero", limit)}, Once, 1, hclog.NewNullLogger(), MaxOutput(limit))
	defer f.Close()
	if r, err, _ := callWithin(t, 15*time.Second, context.Background(), f, nil); err != nil || len(r) != limit {
		t.Errorf("an answer of the limit: %d bytes, %v", len(r), err)
	}
}

// A failing command's standard error is kept only up to a bound.
func TestStderrReasonIsBounded(t *testing.T) {
	f := Handler(Spec{"foo", `head -c 10000000 /dev/zero | tr '\0' x >&2; echo " the end" >&2; exit 2`}, Once, 1, hclog.NewNullLogger())
	defer f.Close()
	_, err, _ := callWithin(t, 15*time.Second, context.Background(), f, nil)
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.Unknown || len(msg) > maxStderr+100 || !strings.Contains(msg, "the end (exit status 2)") {
		t.Errorf("a %d-byte reason, %v; want at most %d bytes, ending with the last words", len(msg), status.Code(err), maxStderr+100)
	}
}
