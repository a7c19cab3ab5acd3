// Package pack says how much goes in one packed Send: the limits every
// stream of palm packs its messages, results and completions under, the
// rule that decides whether one more fits, and the taking of what a queue
// holds into a batch.
package pack

// The limits of one packed Send, shared by every stream: a client's
// requests, a gateway's responses, a publisher's publications, a master's
// tasks and a worker's results. A larger item still goes, alone: the
// message size limit, not these, decides whether an item can be sent at
// all.
const (
	// MaxMessages is the most items (messages, results, completions)
	// packed in one Send.
	MaxMessages = 256
	// MaxBytes bounds the bytes packed in one Send.
	MaxBytes = 1 << 20
)

// Fits reports whether an item of size bytes may join a batch that already
// holds count items of total bytes, under limits of maxCount items and
// maxBytes bytes. A lone item always fits.
func Fits(count, total, size, maxCount, maxBytes int) bool {
	if count == 0 {
		return true
	}
	return count < maxCount && total+size <= maxBytes
}

// Take receives the values ch holds now, without waiting, calling f with
// each, until it has taken max values, f returns false or ch has none
// ready (or is closed). It returns how many it took. The caller has
// usually waited for the first value itself, in a select with its other
// cases: Take gathers what came with it.
func Take[T any](ch <-chan T, max int, f func(T) bool) int {
	n := 0
	for n < max {
		select {
		case v, ok := <-ch:
			if !ok {
				return n
			}
			n++
			if !f(v) {
				return n
			}
		default:
			return n
		}
	}
	return n
}

// Fill appends to buf the values ch holds now, without waiting, until buf
// holds max values or ch has none ready; see Take.
func Fill[T any](buf []T, ch <-chan T, max int) []T {
	Take(ch, max-len(buf), func(v T) bool { buf = append(buf, v); return true })
	return buf
}
