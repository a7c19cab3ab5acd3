package worker

import (
	"context"
	"errors"
	"iter"

	"github.com/gopalm/palm/kv"
)

// This file is the worker side of palm.v1.CacheService: the master's
// key-value store through kv.NewClient, over the connection Run makes (the
// original worker's db_address is the master's address here). Every error
// matches kv.ErrNotFound, kv.ErrInvalidKey, kv.ErrTooLarge or kv.ErrQuota
// with errors.Is where it is one of those, while status.Code reports its
// gRPC code. The calls are meant for handlers: outside Run there is no
// connection and they fail with ErrNotRunning.

// ErrNotRunning is returned by Get, Set, Delete and Keys called while Run
// is not running: the worker reaches its master's cache over the
// connection Run makes.
var ErrNotRunning = errors.New("worker: not running: the master's cache is reached through the connection Run makes")

// store returns the master's cache while Run runs.
func (w *Worker) store() (kv.Store, error) {
	c := w.cache.Load()
	if c == nil {
		return nil, ErrNotRunning
	}
	return c.Store, nil
}

// Get returns the value stored under key in the master's cache. An empty
// stored value comes back as an empty, non-nil slice. A missing key returns
// an error for which errors.Is(err, kv.ErrNotFound) holds; an invalid key
// one matching kv.ErrInvalidKey. Other errors are gRPC status errors, or
// ErrNotRunning. Safe for concurrent use.
func (w *Worker) Get(ctx context.Context, key string) ([]byte, error) {
	s, err := w.store()
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, key)
}

// Set stores value under key in the master's cache, replacing any value
// there, and returns the key; with an empty key, the worker chooses a new
// unique key with kv.NewKey (128 random bits, as the master would) and Set
// returns it. (The original worker took the value first;
// here the key comes first, as everywhere else in Go.) A value over the
// message size limit (palm.WithMaxMessageSize) or over the master's limit
// returns an error matching kv.ErrTooLarge; past the master cache's quota
// of bytes or keys, one matching kv.ErrQuota; an invalid key one matching
// kv.ErrInvalidKey. Safe for concurrent use.
func (w *Worker) Set(ctx context.Context, key string, value []byte) (string, error) {
	s, err := w.store()
	if err != nil {
		return "", err
	}
	if key == "" {
		key = kv.NewKey()
	}
	if err := s.Set(ctx, key, value); err != nil {
		return "", err
	}
	return key, nil
}

// Delete removes key from the master's cache and reports whether it was
// there; deleting a missing key is not an error. An invalid key returns an
// error matching kv.ErrInvalidKey. Safe for concurrent use.
func (w *Worker) Delete(ctx context.Context, key string) (bool, error) {
	s, err := w.store()
	if err != nil {
		return false, err
	}
	return s.Delete(ctx, key)
}

// Keys yields, in byte order, the keys of the master's cache that start
// with prefix (every key for an empty prefix). It fetches them a page at a
// time as the loop asks for them, so keys set or deleted meanwhile may or
// may not appear. On an error it yields ("", err) once and stops. Safe for
// concurrent use.
func (w *Worker) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		s, err := w.store()
		if err != nil {
			yield("", err)
			return
		}
		for k, err := range kv.All(ctx, s, prefix) {
			if !yield(k, err) {
				return
			}
		}
	}
}
