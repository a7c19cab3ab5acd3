package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm/internal/palmtest"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock                { return &fakeClock{t: time.Unix(1_000_000, 0)} }
func callerAt(addr string, conn int) peerOrigin {
	return peerOrigin{addr: addr, conn: fmt.Sprint(addr, "#", conn), remote: fmt.Sprint(addr, ":", conn)}
}

var errWrong = errors.New("wrong token")

// fail records failures from c until one is refused, and returns how many
// were checked.
func failUntilRefused(t *testing.T, f *failures, c peerOrigin, limit int) (checked int, refusal error) {
	t.Helper()
	for range limit {
		if err := f.admit(c); err != nil {
			return checked, err
		}
		if err := f.failed(c, errWrong); err != errWrong {
			t.Fatalf("failed returned %v, want its argument", err)
		}
		checked++
	}
	t.Fatalf("%d failures from %v and none refused", limit, c)
	return
}

// One connection has connBurst failures checked, then is refused, and
// gets one more per second; another connection from the same address is
// still checked.
func TestConnectionLimit(t *testing.T) {
	clock := newClock()
	f := newFailures(hclog.NewNullLogger(), clock.now)
	a := callerAt("10.0.0.1", 1)
	checked, err := failUntilRefused(t, f, a, 1000)
	if checked != connBurst {
		t.Errorf("checked %d failures on one connection before refusing; want %d", checked, connBurst)
	}
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "too many failed authentications on this connection from 10.0.0.1:1; retry after 1s") {
		t.Errorf("refusal: %v", err)
	}
	if err := f.admit(callerAt("10.0.0.1", 2)); err != nil {
		t.Errorf("another connection from the address: %v", err)
	}
	clock.step(time.Second / connRate)
	if err := f.admit(a); err != nil {
		t.Errorf("after a token came back: %v", err)
	}
	if f.Failed() != connBurst || f.Refused() != 1 {
		t.Errorf("counted %d failures and %d refusals; want %d and 1", f.Failed(), f.Refused(), connBurst)
	}
}

// Many connections from one address share its addressBurst; other
// addresses are untouched; the address gets addressRate back per second.
func TestAddressLimit(t *testing.T) {
	clock := newClock()
	f := newFailures(hclog.NewNullLogger(), clock.now)
	checked := 0
	var refusal error
	for conn := 0; refusal == nil; conn++ {
		n, err := failUntilRefusedOrConn(f, callerAt("10.0.0.1", conn))
		checked, refusal = checked+n, err
	}
	if checked != addressBurst {
		t.Errorf("checked %d failures from one address before refusing; want %d", checked, addressBurst)
	}
	if !strings.Contains(refusal.Error(), "too many failed authentications from 10.0.0.1; retry after 200ms") {
		t.Errorf("refusal: %v", refusal)
	}
	if err := f.admit(callerAt("10.0.0.1", 9999)); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a new connection from the refused address: %v, want ResourceExhausted", err)
	}
	if err := f.admit(callerAt("10.0.0.2", 1)); err != nil {
		t.Errorf("another address: %v", err)
	}
	clock.step(time.Second)
	n, _ := failUntilRefusedOrConn(f, callerAt("10.0.0.1", 10000))
	if n != addressRate {
		t.Errorf("a second later, checked %d; want %d", n, addressRate)
	}
}

// failUntilRefusedOrConn fails from c until refused; it reports a refusal
// of the address, not of the connection.
func failUntilRefusedOrConn(f *failures, c peerOrigin) (int, error) {
	for n := 0; ; n++ {
		if err := f.admit(c); err != nil {
			if strings.Contains(err.Error(), "on this connection") {
				return n, nil
			}
			return n, err
		}
		f.failed(c, errWrong)
	}
}

// Failures are logged at Warn at most once per period per address, with
// the counts since the last line; counts not yet logged are logged when
// the address is forgotten.
func TestFailuresLogged(t *testing.T) {
	clock := newClock()
	logs := &palmtest.Buffer{}
	f := newFailures(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}), clock.now)
	a := callerAt("10.0.0.1", 1)
	for range 100 {
		if f.admit(a) == nil {
			f.failed(a, errWrong)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "[WARN]") || !strings.Contains(lines[0], "address=10.0.0.1 failures=1 refused=0") {
		t.Fatalf("after 100 failures within a period, the log:\n%s", logs)
	}
	clock.step(failureLogPeriod)
	if err := f.admit(a); err != nil {
		t.Fatalf("a period later: %v", err)
	}
	f.failed(a, errWrong)
	lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "failures=9 refused=90") {
		t.Fatalf("a period later, the log:\n%s", logs)
	}
	// Quiet: its last failure is logged a period later, at anyone's next
	// call; a period after that it is forgotten.
	clock.step(failureLogPeriod)
	f.admit(callerAt("10.0.0.2", 1))
	lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "failures=1 refused=0") {
		t.Fatalf("a quiet period later, the log:\n%s", logs)
	}
	clock.step(failureLogPeriod)
	f.admit(callerAt("10.0.0.2", 1))
	if _, ok := f.addrs.byKey["10.0.0.1"]; ok || f.size.Load() != 0 {
		t.Errorf("an address full again and logged is still remembered (%d buckets)", f.size.Load())
	}
	if strings.Count(logs.String(), "\n") != 3 {
		t.Errorf("logged again with nothing to say:\n%s", logs)
	}
}

// The tables never hold more than limitEntries; the oldest is forgotten,
// and logged if it had counts to log.
func TestTablesBounded(t *testing.T) {
	clock := newClock()
	logs := &palmtest.Buffer{}
	f := newFailures(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}), clock.now)
	first := callerAt("10.0.0.1", 1)
	for range 3 { // the first logged at once, the others when forgotten
		f.failed(first, errWrong)
	}
	for i := range 2 * limitEntries {
		f.failed(callerAt(fmt.Sprintf("10.1.%d.%d", i/256, i%256), 1), errWrong)
	}
	if len(f.addrs.byKey) > limitEntries || len(f.conns.byKey) > limitEntries || f.addrs.lru.Len() != len(f.addrs.byKey) {
		t.Errorf("tables of %d addresses and %d connections; want at most %d", len(f.addrs.byKey), len(f.conns.byKey), limitEntries)
	}
	if !strings.Contains(logs.String(), "address=10.0.0.1 failures=2 refused=0") {
		t.Errorf("the forgotten address's unlogged failure was not logged:\n%s", logs)
	}
}

// A peer that never failed takes the path that reads one counter.
func TestNoFailuresNoLock(t *testing.T) {
	f := newFailures(hclog.NewNullLogger(), time.Now)
	f.mu.Lock() // admit must not need it
	defer f.mu.Unlock()
	if err := f.admit(callerAt("10.0.0.1", 1)); err != nil {
		t.Fatal(err)
	}
}

func TestCallerOf(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	for _, tc := range []struct {
		remote net.Addr
		addr   string
	}{
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 40000}, "10.1.2.3"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 40000}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "@x", Net: "unix"}, "@x"},
	} {
		c := callerOf(peer.NewContext(context.Background(), &peer.Peer{Addr: tc.remote, LocalAddr: local}))
		if c.addr != tc.addr || c.conn != local.String()+"<"+tc.remote.String() {
			t.Errorf("%v: got %+v, want address %s", tc.remote, c, tc.addr)
		}
	}
	if c := callerOf(context.Background()); c.addr != "unknown" {
		t.Errorf("no peer: %+v", c)
	}
}
