// Package backoff is the delay before connecting again: it starts at a
// minimum, doubles with each failure up to a maximum, and each wait is
// jittered so that many clients that lost the same server do not come back
// at the same instant.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff paces the attempts of one connection loop. It is not safe for
// concurrent use: each loop owns its own.
type Backoff struct {
	min, max time.Duration
	delay    time.Duration
	failures int
}

// New returns a Backoff whose first delay is min and whose delays grow to
// max; it needs 0 < min <= max.
func New(min, max time.Duration) *Backoff {
	return &Backoff{min: min, max: max, delay: min}
}

// Reset starts again from the minimum, with no failure counted: call it
// once an attempt succeeded.
func (b *Backoff) Reset() { b.delay, b.failures = b.min, 0 }

// Wait is how long to wait before the next attempt: the current delay,
// jittered into [delay/2, delay]. It counts no failure.
func (b *Backoff) Wait() time.Duration { return b.delay/2 + rand.N(b.delay/2+1) }

// Fail counts a failed attempt and returns how long to wait before the
// next one (as Wait); the delay after it doubles, up to the maximum.
func (b *Backoff) Fail() time.Duration {
	b.failures++
	wait := b.Wait()
	b.delay = min(2*b.delay, b.max)
	return wait
}

// Failures is the number of failures since the last Reset.
func (b *Backoff) Failures() int { return b.failures }

// Sleep waits for d, or until ctx ends; it reports whether the whole wait
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
