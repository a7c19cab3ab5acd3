package execfn

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// pidFile is where a test's command writes its shell's pid ($$) and its
// background child's ($!), a line per start.
func pidFile(t *testing.T) string {
	return filepath.Join(t.TempDir(), "pids")
}

// recorded reads the pids written to file, waiting until there are at
// least n lines.
func recorded(t *testing.T, file string, n int) [][]int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= n && strings.HasSuffix(string(b), "\n") {
			var all [][]int
			for _, l := range lines {
				var pids []int
				for _, w := range strings.Fields(l) {
					pid, err := strconv.Atoi(w)
					if err != nil {
						t.Fatalf("%s: %q", file, b)
					}
					pids = append(pids, pid)
				}
				all = append(all, pids)
			}
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command wrote %q to %s; want %d lines", b, file, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procStat is a process's state and group, from /proc/PID/stat; ok is
// false when there is no such process.
func procStat(pid int) (state byte, pgid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	f := strings.Fields(string(rest))
	if len(f) < 3 {
		return 0, 0, false
	}
	pgid, _ = strconv.Atoi(f[2])
	return f[0][0], pgid, true
}

// living lists the processes, zombies aside, that are among pids or in
// the process group pgid.
func living(pids []int, pgid int) []string {
	var found []string
	for _, pid := range pids {
		if st, _, ok := procStat(pid); ok && st != 'Z' {
			found = append(found, fmt.Sprintf("pid %d (%c)", pid, st))
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, g, ok := procStat(pid); ok && g == pgid && st != 'Z' {
			found = append(found, fmt.Sprintf("pid %d (%c) in group %d", pid, st, pgid))
		}
	}
	return found
}

// checkGone fails the test unless every process of pids, and of the group
// led by pids[0], is gone within a short bound (killed processes take a
// moment to die).
func checkGone(t *testing.T, pids []int) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc to look for processes in")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := living(pids, pids[0])
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
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
			pids := pidFile(t)
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
			first := recorded(t, pids, 1)[0]
			checkGone(t, first)
			if mode == Once {
				return
			}
			reply, err, _ := callWithin(t, 15*time.Second, context.Background(), f, []byte("next"))
			if want := map[Mode]string{Lines: "got next", Frames: "upper:NEXT"}[mode]; err != nil || string(reply) != want {
				t.Fatalf("after the timeout: %q, %v; want %q", reply, err, want)
			}
			if again := recorded(t, pids, 2)[1]; again[0] == first[0] {
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
			pids := pidFile(t)
			f := Handler(Spec{"foo", `read l; sleep 300 & echo $$ $! >> ` + pids + `; sleep 300`}, mode, 1, hclog.NewNullLogger())
			defer f.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				recorded(t, pids, 1)
				cancel()
			}()
			_, err, _ := callWithin(t, 15*time.Second, ctx, f, []byte("x"))
			wantCode(t, err, codes.Canceled)
			checkGone(t, recorded(t, pids, 1)[0])
		})
	}
}

// Close kills what runs: a once-mode command in flight, and a long-running
// one that does not exit when its input ends, with what it started.
func TestCloseLeavesNothing(t *testing.T) {
	pids := pidFile(t)
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
	checkGone(t, recorded(t, pids, 1)[0])

	pids = pidFile(t)
	once := Handler(Spec{"foo", `sleep 300 & echo $$ $! >> ` + pids + `; sleep 300`}, Once, 1, hclog.NewNullLogger())
	go func() {
		recorded(t, pids, 1)
		once.Close()
	}()
	_, err, _ := callWithin(t, 15*time.Second, context.Background(), once, nil)
	wantCode(t, err, codes.Unavailable, "shutting down")
	checkGone(t, recorded(t, pids, 1)[0])
}

// A once-mode command that exits leaving a background process is done;
// the process is killed with its group.
func TestOnceKillsWhatIsLeft(t *testing.T) {
	pids := pidFile(t)
	f := Handler(Spec{"foo", `sleep 300 >/dev/null 2>&1 & echo $$ $! >> ` + pids + `; echo done`}, Once, 1, hclog.NewNullLogger())
	defer f.Close()
	r, err, _ := callWithin(t, 15*time.Second, context.Background(), f, nil)
	if err != nil || string(r) != "done\n" {
		t.Fatalf("%q, %v", r, err)
	}
	checkGone(t, recorded(t, pids, 1)[0])
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
