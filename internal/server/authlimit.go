package server

import (
	"container/list"
	"context"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Failed authentications are limited by two token buckets, one per peer
// address (an IPv4 address, or an IPv6 /64) and one per connection. Each
// failure takes a token from both; a call from an address or on a
// connection whose bucket holds less than one token is refused with
// ResourceExhausted before its credentials are checked, so a guesser gets
// no answer to its guesses until the bucket refills. A connection's bucket
// is smaller than its address's, so one bad client behind a shared
// address is stopped before it uses up the allowance of the others.
//
// The numbers are documented in docs/security.md.
const (
	addressBurst = 50 // failures an address may have at once
	addressRate  = 5  // tokens back per second
	connBurst    = 10 // failures a connection may have at once
	connRate     = 1  // tokens back per second

	// limitEntries bounds each table (addresses, connections): past it
	// the peer whose last failure is the oldest is forgotten.
	limitEntries = 4096
	// failureLogPeriod: a peer's failures are logged at most once per
	// period, with the counts since its last line.
	failureLogPeriod = 10 * time.Second
)

// bucketRule is the size and refill rate of a table's buckets.
type bucketRule struct {
	burst, rate float64
}

// bucket is one peer's (an address's or a connection's) allowance.
type bucket struct {
	key    string
	tokens float64
	at     time.Time // when tokens was last brought up to date

	// Address buckets only: what happened since the last log line.
	failed, refused uint64
	logged          time.Time
	elem            *list.Element
}

// table holds the buckets of one kind of peer, at most max of them, the
// most recently failed at the front.
type table struct {
	rule  bucketRule
	max   int
	byKey map[string]*bucket
	lru   list.List
}

func newTable(rule bucketRule, max int) *table {
	return &table{rule: rule, max: max, byKey: map[string]*bucket{}}
}

// refill brings b's tokens up to now.
func (t *table) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(t.rule.burst, b.tokens+d.Seconds()*t.rule.rate)
		b.at = now
	}
}

// wait is how long until b holds a whole token again.
func (t *table) wait(b *bucket) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / t.rule.rate * float64(time.Second))
}

// lookup returns key's bucket brought up to now, or nil.
func (t *table) lookup(key string, now time.Time) *bucket {
	b := t.byKey[key]
	if b != nil {
		t.refill(b, now)
	}
	return b
}

// take returns key's bucket, made when missing (full, evicting the oldest
// when the table is full; evicted gets each bucket forgotten so), moved to
// the front.
func (t *table) take(key string, now time.Time, evicted func(*bucket) bool) *bucket {
	if b := t.lookup(key, now); b != nil {
		t.lru.MoveToFront(b.elem)
		return b
	}
	for len(t.byKey) >= t.max {
		t.remove(t.lru.Back().Value.(*bucket), evicted)
	}
	b := &bucket{key: key, tokens: t.rule.burst, at: now}
	b.elem = t.lru.PushFront(b)
	t.byKey[key] = b
	return b
}

func (t *table) remove(b *bucket, evicted func(*bucket) bool) {
	t.lru.Remove(b.elem)
	delete(t.byKey, b.key)
	if evicted != nil {
		evicted(b)
	}
}

// expire forgets, from the back, the buckets that are full again and
// whose last log line is a period old. One with counts not yet logged is
// logged (by flush) and kept for another period instead, so that its
// address is never logged twice in a period.
func (t *table) expire(now time.Time, flush func(*bucket) bool) {
	for e := t.lru.Back(); e != nil; e = t.lru.Back() {
		b := e.Value.(*bucket)
		t.refill(b, now)
		if b.tokens < t.rule.burst || now.Sub(b.logged) < failureLogPeriod {
			return
		}
		if flush != nil && flush(b) {
			b.logged = now
			t.lru.MoveToFront(e)
			continue
		}
		t.remove(b, nil)
	}
}

// failures limits, logs and counts the failed authentications of a
// server. It starts no goroutine; every method is safe for concurrent use.
type failures struct {
	logger hclog.Logger
	now    func() time.Time

	mu    sync.Mutex
	addrs *table
	conns *table
	// size is how many buckets exist: the path of a call from a peer
	// that never failed reads only it.
	size atomic.Int64

	failedTotal, refusedTotal atomic.Uint64
}

func newFailures(logger hclog.Logger, now func() time.Time) *failures {
	return &failures{
		logger: logger,
		now:    now,
		addrs:  newTable(bucketRule{addressBurst, addressRate}, limitEntries),
		conns:  newTable(bucketRule{connBurst, connRate}, limitEntries),
	}
}

// peerOrigin names where a call comes from: its address (the key of its
// address bucket, and the name the caller is told) and its connection.
type peerOrigin struct {
	addr, conn, remote string
}

// callerOf finds the caller of the call ctx belongs to.
func callerOf(ctx context.Context) peerOrigin {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return peerOrigin{addr: "unknown", conn: "unknown", remote: "unknown"}
	}
	c := peerOrigin{remote: p.Addr.String()}
	c.addr, c.conn = c.remote, c.remote
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		if v4 := tcp.IP.To4(); v4 != nil {
			c.addr = v4.String()
		} else {
			c.addr = tcp.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
		}
	}
	if p.LocalAddr != nil {
		c.conn = p.LocalAddr.String() + "<" + c.remote
	}
	return c
}

// admit returns a ResourceExhausted error when c's address or connection
// has failed too often, and counts and logs the refusal; nil otherwise.
func (f *failures) admit(c peerOrigin) error {
	if f.size.Load() == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	defer f.tidy(now)
	var err error
	if b := f.conns.lookup(c.conn, now); b != nil && b.tokens < 1 {
		err = status.Errorf(codes.ResourceExhausted, "too many failed authentications on this connection from %s; retry after %v, and fix the token or certificate", c.remote, roundUp(f.conns.wait(b)))
	}
	if b := f.addrs.lookup(c.addr, now); b != nil && b.tokens < 1 {
		err = status.Errorf(codes.ResourceExhausted, "too many failed authentications from %s; retry after %v, and fix the token or certificate", c.addr, roundUp(f.addrs.wait(b)))
	}
	if err == nil {
		return nil
	}
	f.refusedTotal.Add(1)
	a := f.addrs.take(c.addr, now, f.logEvicted)
	a.refused++
	f.maybeLog(a, now)
	return err
}

// failed records that c failed to authenticate, logs it when its address
// has not been logged for a period, and returns err.
func (f *failures) failed(c peerOrigin, err error) error {
	f.failedTotal.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	defer f.tidy(now)
	for _, b := range []*bucket{f.addrs.take(c.addr, now, f.logEvicted), f.conns.take(c.conn, now, nil)} {
		b.tokens = math.Max(0, b.tokens-1)
	}
	a := f.addrs.byKey[c.addr]
	a.failed++
	f.maybeLog(a, now)
	return err
}

// tidy forgets the buckets that are full again and logged, and notes how
// many remain.
func (f *failures) tidy(now time.Time) {
	f.addrs.expire(now, f.logEvicted)
	f.conns.expire(now, nil)
	f.size.Store(int64(len(f.addrs.byKey) + len(f.conns.byKey)))
}

// maybeLog logs a's counts when its last line is a period old.
func (f *failures) maybeLog(a *bucket, now time.Time) {
	if now.Sub(a.logged) >= failureLogPeriod {
		f.log(a)
		a.logged = now
	}
}

// logEvicted logs what an address bucket had not logged yet, and reports
// whether there was anything.
func (f *failures) logEvicted(a *bucket) bool {
	if a.failed+a.refused == 0 {
		return false
	}
	f.log(a)
	return true
}

func (f *failures) log(a *bucket) {
	f.logger.Warn("failed authentications", "address", a.key, "failures", a.failed, "refused", a.refused,
		"throttled", a.tokens < 1, "period", failureLogPeriod)
	a.failed, a.refused = 0, 0
}

// Failed and Refused count the failed authentications and the calls
// refused unchecked for too many of them, since the server started.
func (f *failures) Failed() uint64  { return f.failedTotal.Load() }
func (f *failures) Refused() uint64 { return f.refusedTotal.Load() }

// roundUp rounds d up to a tenth of a second, at least that.
func roundUp(d time.Duration) time.Duration {
	const step = 100 * time.Millisecond
	return max(step, (d+step-1)/step*step)
}
