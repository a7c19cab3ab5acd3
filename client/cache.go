package client

import (
	"context"
	"iter"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm/kv"
)

// This file is the client side of palm.v1.CacheService: the server's
// key-value store through kv.NewClient, under kv.Prefix with a Session.
// Every error matches kv.ErrNotFound, kv.ErrInvalidKey, kv.ErrTooLarge or
// kv.ErrQuota with errors.Is where it is one of those, while status.Code
// reports its gRPC code.

// Get returns the value stored under key in the server's cache (under the
// session's name, with Session). An empty stored value comes back as an
// empty, non-nil slice.
//
// A missing key returns an error for which errors.Is(err, kv.ErrNotFound)
// holds; an empty, overlong or non-UTF-8 key one matching kv.ErrInvalidKey.
// Other errors are the server's gRPC status errors.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	return c.cache.Get(ctx, key)
}

// Set stores value under key in the server's cache (under the session's
// name, with Session), replacing any value
// there, and returns the key. With an empty key, the Client chooses a new
// unique key with kv.NewKey (128 random bits, as the server would) and
// returns it; Get and Delete take the returned key as it is. Note that the original client took the value first;
// here the key comes first, as everywhere else in Go.
//
// A value larger than the message size limit (palm.WithMaxMessageSize) is
// refused without sending, and a value over the server's own limit by the
// server, both with an error for which errors.Is(err, kv.ErrTooLarge)
// holds; a Set that would take the server's cache past its quota of bytes
// or keys fails with one matching kv.ErrQuota (ResourceExhausted); an
// invalid key gives one matching kv.ErrInvalidKey.
func (c *Client) Set(ctx context.Context, key string, value []byte) (string, error) {
	if len(value) > c.max {
		return "", kv.FromStatus(status.Errorf(codes.ResourceExhausted,
			"value is %d bytes; the limit is %d bytes (palm.WithMaxMessageSize); not sent", len(value), c.max))
	}
	if key == "" {
		key = kv.NewKey()
	}
	if err := c.cache.Set(ctx, key, value); err != nil {
		return "", err
	}
	return key, nil
}

// Delete removes key from the server's cache (under the session's name, with
// Session) and reports whether it was
// there; deleting a missing key is not an error. An empty, overlong or
// non-UTF-8 key returns an error matching kv.ErrInvalidKey; other errors are
// the server's gRPC status errors.
func (c *Client) Delete(ctx context.Context, key string) (bool, error) {
	return c.cache.Delete(ctx, key)
}

// Keys yields, in byte order, the keys of the server's cache that start with
// prefix (every key for an empty prefix). With Session, it lists only the
// session's keys and yields them without the session's name, as Get takes
// them. It fetches the keys a page at a time as the loop asks for them, so
// keys set or deleted meanwhile may or may not appear. On an error it yields
// ("", err) once and stops; errors are the server's gRPC status errors.
func (c *Client) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return kv.All(ctx, c.cache, prefix)
}
