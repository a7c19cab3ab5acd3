package client

import (
	"context"
	"iter"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/kv"
)

// This file is the client side of palm.v1.CacheService: the unary RPCs Get,
// Set, Delete and Keys on the server's key-value store. Every error goes
// through kv.FromStatus, so errors.Is matches kv.ErrNotFound,
// kv.ErrInvalidKey, kv.ErrTooLarge and kv.ErrQuota while status.Code still
// reports the gRPC code.

// Get returns the value stored under key in the server's cache (under the
// session's name, with Session). An empty stored value comes back as an
// empty, non-nil slice.
//
// A missing key returns an error for which errors.Is(err, kv.ErrNotFound)
// holds; an empty, overlong or non-UTF-8 key one matching kv.ErrInvalidKey.
// Other errors are the server's gRPC status errors.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	full, err := c.fullKey(key)
	if err != nil {
		return nil, err
	}
	resp, err := c.cache.Get(ctx, &palmv1.GetRequest{Key: full})
	if err != nil {
		return nil, kv.FromStatus(err)
	}
	if resp.GetValue() == nil {
		return []byte{}, nil
	}
	return resp.GetValue(), nil
}

// Set stores value under key in the server's cache (under the session's
// name, with Session), replacing any value
// there, and returns the key. With an empty key, a new unique key is chosen
// and returned: by the server, or, with Session, by the Client with
// kv.NewKey (so that the value lands under the session); either way Get and Delete take the
// returned key as it is. Note that the original client took the value first;
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
	if key == "" && c.prefix != "" {
		key = kv.NewKey()
	}
	full := ""
	if key != "" {
		var err error
		if full, err = c.fullKey(key); err != nil {
			return "", err
		}
	}
	resp, err := c.cache.Set(ctx, &palmv1.SetRequest{Key: full, Value: value})
	if err != nil {
		return "", kv.FromStatus(err)
	}
	if key == "" {
		return resp.GetKey(), nil
	}
	return key, nil
}

// Delete removes key from the server's cache (under the session's name, with
// Session) and reports whether it was
// there; deleting a missing key is not an error. An empty, overlong or
// non-UTF-8 key returns an error matching kv.ErrInvalidKey; other errors are
// the server's gRPC status errors.
func (c *Client) Delete(ctx context.Context, key string) (bool, error) {
	full, err := c.fullKey(key)
	if err != nil {
		return false, err
	}
	resp, err := c.cache.Delete(ctx, &palmv1.DeleteRequest{Key: full})
	if err != nil {
		return false, kv.FromStatus(err)
	}
	return resp.GetDeleted(), nil
}

// Keys yields, in byte order, the keys of the server's cache that start with
// prefix (every key for an empty prefix). With Session, it lists only the
// session's keys and yields them without the session's name, as Get takes
// them. It fetches the keys a page at a time as the loop asks for them, so
// keys set or deleted meanwhile may or may not appear. On an error it yields
// ("", err) once and stops; errors are the server's gRPC status errors.
func (c *Client) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if !utf8.ValidString(prefix) {
			yield("", kv.FromStatus(status.Errorf(codes.InvalidArgument, "prefix %q is not valid UTF-8", prefix)))
			return
		}
		after := ""
		for {
			resp, err := c.cache.Keys(ctx, &palmv1.KeysRequest{Prefix: c.prefix + prefix, StartAfter: after})
			if err != nil {
				yield("", kv.FromStatus(err))
				return
			}
			keys := resp.GetKeys()
			for _, k := range keys {
				if short, ok := strings.CutPrefix(k, c.prefix); ok {
					if !yield(short, nil) {
						return
					}
				}
			}
			if !resp.GetMore() {
				return
			}
			if len(keys) == 0 {
				yield("", status.Error(codes.Internal, "the server said more keys follow but sent none"))
				return
			}
			after = keys[len(keys)-1]
		}
	}
}

// fullKey returns the key as stored on the server, with the session's
// prefix, or an error matching kv.ErrInvalidKey when it could not be sent.
func (c *Client) fullKey(key string) (string, error) {
	if key == "" {
		return "", kv.FromStatus(status.Error(codes.InvalidArgument, "the key is empty"))
	}
	full := c.prefix + key
	if err := kv.ValidKey(full); err != nil {
		return "", kv.FromStatus(status.Error(codes.InvalidArgument, err.Error()))
	}
	return full, nil
}
