package execfn

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMain doubles as a frames-speaking command: with EXECFN_FRAMES set,
// the test binary answers frames as a --exec-mode frames program would.
func TestMain(m *testing.M) {
	if os.Getenv("EXECFN_FRAMES") != "" {
		framesEcho()
		return
	}
	goleak.VerifyTestMain(m)
}

// framesEcho answers "upper:" + payload, an error for "fail", nothing for
// "none", 8 MiB for "big"; it exits for "die", and for "hang" starts a
// child and never answers.
func framesEcho() {
	in, out := bufio.NewReader(os.Stdin), bufio.NewWriter(os.Stdout)
	for {
		var h [4]byte
		if _, err := io.ReadFull(in, h[:]); err != nil {
			return
		}
		p := make([]byte, binary.BigEndian.Uint32(h[:]))
		io.ReadFull(in, p)
		status, reply := byte(0), "upper:"+strings.ToUpper(string(p))
		switch string(p) {
		case "fail":
			status, reply = 1, "it failed"
		case "none":
			status, reply = 2, ""
		case "die":
			os.Exit(3)
		case "big":
			reply = strings.Repeat("z", 8<<20)
		case "hang":
			exec.Command("sleep", "300").Start()
			select {}
		}
		out.WriteByte(status)
		out.Write(binary.BigEndian.AppendUint32(nil, uint32(len(reply))))
		out.WriteString(reply)
		out.Flush()
	}
}

func call(t *testing.T, f *Func, payload string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := f.Call(ctx, []byte(payload))
	return string(b), err
}

func check(t *testing.T, f *Func, payload, want string, code codes.Code, msg string) {
	t.Helper()
	got, err := call(t, f, payload)
	if status.Code(err) != code || got != want || (msg != "" && !strings.Contains(fmt.Sprint(err), msg)) {
		t.Errorf("%q: got %q, %v; want %q, %s containing %q", payload, got, err, want, code, msg)
	}
}

func TestOnce(t *testing.T) {
	f := Handler(Spec{"foo", `read x; case "$x" in bad) echo "no good" >&2; exit 3;; none) ;; *) printf 'you sent me %s' "$x";; esac`}, Once, 2, hclog.NewNullLogger())
	defer f.Close()
	check(t, f, "a message", "you sent me a message", codes.OK, "")
	check(t, f, "bad", "", codes.Unknown, "no good (exit status 3)")
	check(t, f, "none", "", codes.OK, "")
}

func TestLines(t *testing.T) {
	f := Handler(Spec{"foo", `while read l; do if [ "$l" = die ]; then exit 1; fi; echo "got $l"; done`}, Lines, 2, hclog.NewNullLogger())
	defer f.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { check(t, f, fmt.Sprint(i), fmt.Sprint("got ", i), codes.OK, "") })
	}
	wg.Wait()
	check(t, f, "two\nlines", "", codes.InvalidArgument, "newline")
	check(t, f, "die", "", codes.Unknown, "reading the command's answer")
	check(t, f, "again", "got again", codes.OK, "") // started again
}

func TestFrames(t *testing.T) {
	f := Handler(Spec{"foo", "EXECFN_FRAMES=1 exec " + os.Args[0]}, Frames, 2, hclog.NewNullLogger())
	defer f.Close()
	check(t, f, "a message\nwith a newline", "upper:A MESSAGE\nWITH A NEWLINE", codes.OK, "")
	check(t, f, "fail", "", codes.Unknown, "it failed")
	check(t, f, "none", "", codes.OK, "")
	check(t, f, "die", "", codes.Unknown, "reading the command's answer")
	check(t, f, "after", "upper:AFTER", codes.OK, "")
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"foo", "=cmd", "foo=", "a.b=cmd", "a b=cmd"} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q): no error", bad)
		}
	}
	if s, err := ParseSpec("foo=tr a-z A-Z"); err != nil || s.Function != "foo" || s.Command != "tr a-z A-Z" {
		t.Errorf("ParseSpec: %v %v", s, err)
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Error("ParseMode: no error")
	}
}

func TestLimitedKeepsTheTail(t *testing.T) {
	l := &limited{max: 8}
	l.Write([]byte("old text, "))
	l.Write([]byte("fresh!"))
	if got := l.String(); got != ", fresh!" {
		t.Errorf("kept %q", got)
	}
}
