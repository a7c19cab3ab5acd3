package client

// inflight is the decision core of a Job's window: the sequences sent and
// not yet completed by the server. It has no locking and no goroutines; the
// Job guards it with a mutex.
type inflight struct {
	open map[uint64]struct{}
}

func newInflight() inflight {
	return inflight{open: make(map[uint64]struct{})}
}

// add records that the message numbered seq was sent.
func (w *inflight) add(seq uint64) { w.open[seq] = struct{}{} }

// complete records the server's completions and returns how many of them
// freed a place in the window. Sequences that were never sent, or already
// completed, free nothing.
func (w *inflight) complete(seqs []uint64) int {
	n := 0
	for _, s := range seqs {
		if _, ok := w.open[s]; ok {
			delete(w.open, s)
			n++
		}
	}
	return n
}

// len returns the number of unfinished messages.
func (w *inflight) len() int { return len(w.open) }
