package worker

import (
	"context"
	"errors"
	"iter"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/kv"
)

// This file is the worker side of palm.v1.CacheService: the unary RPCs Get,
// Set, Delete and Keys on the master's key-value store, over the connection
// Run makes (the original worker's db_address is the master's address
// here). Every error goes through kv.FromStatus, so errors.Is matches
// kv.ErrNotFound, kv.ErrInvalidKey, kv.ErrTooLarge and kv.ErrQuota while status.Code
// still reports the gRPC code. The calls are meant for handlers: outside
// Run there is no connection and they fail with ErrNotRunning.

// ErrNotRunning is returned by Get, Set, Delete and Keys called while Run
// is not running: the worker reaches its master's cache over the
// connection Run makes.
var ErrNotRunning = errors.New("worker: not running: the master's cache is reached through the connection Run makes")

// cacheClient returns the CacheService client of the running Run, after
// checking that key (a key or a prefix) can travel: a string that is not
// UTF-8 cannot be encoded.
func (w *Worker) cacheClient(key string) (palmv1.CacheServiceClient, error) {
	if !utf8.ValidString(key) {
		return nil, kv.FromStatus(status.Errorf(codes.InvalidArgument, "key %q is not valid UTF-8", key))
	}
	c := w.cache.Load()
	if c == nil {
		return nil, ErrNotRunning
	}
	return c.CacheServiceClient, nil
}

// Get returns the value stored under key in the master's cache. An empty
// stored value comes back as an empty, non-nil slice. A missing key returns
// an error for which errors.Is(err, kv.ErrNotFound) holds; an invalid key
// one matching kv.ErrInvalidKey. Other errors are gRPC status errors, or
// ErrNotRunning. Safe for concurrent use.
func (w *Worker) Get(ctx context.Context, key string) ([]byte, error) {
	c, err := w.cacheClient(key)
	if err != nil {
		return nil, err
	}
	resp, err := c.Get(ctx, &palmv1.GetRequest{Key: key})
	if err != nil {
		return nil, kv.FromStatus(err)
	}
	if resp.GetValue() == nil {
		return []byte{}, nil
	}
	return resp.GetValue(), nil
}

// Set stores value under key in the master's cache, replacing any value
// there, and returns the key; with an empty key, the master chooses a new
// unique key and Set returns it. (The original worker took the value first;
// here the key comes first, as everywhere else in Go.) A value over the
// message size limit (palm.WithMaxMessageSize) or over the master's limit
// returns an error matching kv.ErrTooLarge; past the master cache's quota
// of bytes or keys, one matching kv.ErrQuota; an invalid key one matching
// kv.ErrInvalidKey. Safe for concurrent use.
func (w *Worker) Set(ctx context.Context, key string, value []byte) (string, error) {
	c, err := w.cacheClient(key)
	if err != nil {
		return "", err
	}
	resp, err := c.Set(ctx, &palmv1.SetRequest{Key: key, Value: value})
	if err != nil {
		return "", kv.FromStatus(err)
	}
	return resp.GetKey(), nil
}

// Delete removes key from the master's cache and reports whether it was
// there; deleting a missing key is not an error. An invalid key returns an
// error matching kv.ErrInvalidKey. Safe for concurrent use.
func (w *Worker) Delete(ctx context.Context, key string) (bool, error) {
	c, err := w.cacheClient(key)
	if err != nil {
		return false, err
	}
	resp, err := c.Delete(ctx, &palmv1.DeleteRequest{Key: key})
	if err != nil {
		return false, kv.FromStatus(err)
	}
	return resp.GetDeleted(), nil
}

// Keys yields, in byte order, the keys of the master's cache that start
// with prefix (every key for an empty prefix). It fetches them a page at a
// time as the loop asks for them, so keys set or deleted meanwhile may or
// may not appear. On an error it yields ("", err) once and stops. Safe for
// concurrent use.
func (w *Worker) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		c, err := w.cacheClient(prefix)
		if err != nil {
			yield("", err)
			return
		}
		after := ""
		for {
			resp, err := c.Keys(ctx, &palmv1.KeysRequest{Prefix: prefix, StartAfter: after})
			if err != nil {
				yield("", kv.FromStatus(err))
				return
			}
			keys := resp.GetKeys()
			for _, k := range keys {
				if !yield(k, nil) {
					return
				}
			}
			if !resp.GetMore() {
				return
			}
			if len(keys) == 0 {
				yield("", status.Error(codes.Internal, "the master said more keys follow but sent none"))
				return
			}
			after = keys[len(keys)-1]
		}
	}
}
