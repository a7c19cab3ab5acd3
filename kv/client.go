package kv

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// NewClient returns a Store that keeps its keys in the palm.v1.CacheService
// served on conn: a master's cache, seen from a worker or a client. Errors
// from the service go through FromStatus, so errors.Is matches the
// sentinels while status.Code still reports the gRPC code; an invalid key
// refused before sending carries the status the service would have
// answered with (InvalidArgument). Keys pages
// through the service (at most 1000 keys a call); Len lists every key, a
// page at a time, to count them. The Store is safe for concurrent use.
func NewClient(conn grpc.ClientConnInterface) Store {
	return remote{palmv1.NewCacheServiceClient(conn)}
}

// remote is the Store of NewClient.
type remote struct{ c palmv1.CacheServiceClient }

func (r remote) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidKey(key); err != nil {
		return nil, local(err)
	}
	resp, err := r.c.Get(ctx, &palmv1.GetRequest{Key: key})
	if err != nil {
		return nil, FromStatus(err)
	}
	if resp.GetValue() == nil {
		return []byte{}, nil
	}
	return resp.GetValue(), nil
}

func (r remote) Set(ctx context.Context, key string, value []byte) error {
	// The service would choose a key for the empty one; a Store does not.
	if err := ValidKey(key); err != nil {
		return local(err)
	}
	_, err := r.c.Set(ctx, &palmv1.SetRequest{Key: key, Value: value})
	return FromStatus(err)
}

func (r remote) Delete(ctx context.Context, key string) (bool, error) {
	if err := ValidKey(key); err != nil {
		return false, local(err)
	}
	resp, err := r.c.Delete(ctx, &palmv1.DeleteRequest{Key: key})
	if err != nil {
		return false, FromStatus(err)
	}
	return resp.GetDeleted(), nil
}

// maxPage is the most keys the CacheService returns in one call.
const maxPage = 1000

func (r remote) Keys(ctx context.Context, prefix, startAfter string, limit int) ([]string, bool, error) {
	if err := validText("prefix", prefix); err != nil {
		return nil, false, local(err)
	}
	if err := validText("start key", startAfter); err != nil {
		return nil, false, local(err)
	}
	var keys []string
	for {
		var page uint32 // 0: the service's largest page
		if limit > 0 {
			page = uint32(min(limit-len(keys), maxPage))
		}
		resp, err := r.c.Keys(ctx, &palmv1.KeysRequest{Prefix: prefix, StartAfter: startAfter, Limit: page})
		if err != nil {
			return nil, false, FromStatus(err)
		}
		got := resp.GetKeys()
		keys = append(keys, got...)
		switch {
		case !resp.GetMore() || (limit > 0 && len(keys) >= limit):
			return keys, resp.GetMore(), nil
		case len(got) == 0:
			return nil, false, status.Error(codes.Internal, "kv: the cache service said more keys follow but sent none")
		}
		startAfter = got[len(got)-1]
	}
}

func (r remote) Len(ctx context.Context) (int, error) { return count(ctx, r) }

// local gives an error found before anything was sent the gRPC status the
// service would have answered with, so that every error of the Store
// carries a gRPC code as well as its sentinel.
func local(err error) error { return FromStatus(ToStatus(err)) }

// validText checks a prefix or a start key, which may be empty but must
// travel: a string that is not UTF-8 cannot be encoded.
func validText(what, s string) error {
	if !utf8.ValidString(s) {
		return &kvError{sentinel: ErrInvalidKey, msg: fmt.Sprintf("%s %q is not valid UTF-8", what, s)}
	}
	return nil
}

// Prefix returns a view of store in which every key is stored with prefix
// in front of it: Get("a") reads prefix+"a", Keys lists only the keys under
// prefix and returns them without it, Len counts them. A key is valid in
// the view when prefix+key is valid in store. Several views with prefixes
// that do not start one another (such as "session1." and "session2.") do
// not see each other's keys. A key the view refuses (empty, or too long
// once prefixed) gives an error matching ErrInvalidKey with the gRPC status
// InvalidArgument, as NewClient's do. An empty prefix returns store itself.
func Prefix(store Store, prefix string) Store {
	if prefix == "" {
		return store
	}
	return prefixed{store, prefix}
}

type prefixed struct {
	s      Store
	prefix string
}

func (p prefixed) full(key string) (string, error) {
	if key == "" {
		return "", local(ValidKey(key))
	}
	full := p.prefix + key
	if len(full) > MaxKeyLen && utf8.ValidString(key) {
		return "", local(&kvError{sentinel: ErrInvalidKey,
			msg: fmt.Sprintf("key is %d bytes; the limit under prefix %q is %d bytes", len(key), p.prefix, max(0, MaxKeyLen-len(p.prefix)))})
	}
	if err := ValidKey(full); err != nil {
		return "", local(err)
	}
	return full, nil
}

func (p prefixed) Get(ctx context.Context, key string) ([]byte, error) {
	full, err := p.full(key)
	if err != nil {
		return nil, err
	}
	return p.s.Get(ctx, full)
}

func (p prefixed) Set(ctx context.Context, key string, value []byte) error {
	full, err := p.full(key)
	if err != nil {
		return err
	}
	return p.s.Set(ctx, full, value)
}

func (p prefixed) Delete(ctx context.Context, key string) (bool, error) {
	full, err := p.full(key)
	if err != nil {
		return false, err
	}
	return p.s.Delete(ctx, full)
}

func (p prefixed) Keys(ctx context.Context, prefix, startAfter string, limit int) ([]string, bool, error) {
	after := ""
	if startAfter != "" {
		after = p.prefix + startAfter
	}
	keys, more, err := p.s.Keys(ctx, p.prefix+prefix, after, limit)
	if err != nil {
		return nil, false, err
	}
	for i, k := range keys {
		keys[i] = strings.TrimPrefix(k, p.prefix)
	}
	return keys, more, nil
}

func (p prefixed) Len(ctx context.Context) (int, error) { return count(ctx, p) }

// count counts the keys of a store that has no cheaper way, a page at a
// time.
func count(ctx context.Context, s Store) (int, error) {
	n := 0
	for _, err := range All(ctx, s, "") {
		if err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// All yields, in byte order, the keys of store that start with prefix
// (every key for an empty prefix), fetching them a page at a time as the
// loop asks for them, so that keys set or deleted meanwhile may or may not
// appear. On an error it yields ("", err) once and stops.
func All(ctx context.Context, store Store, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		after := ""
		for {
			keys, more, err := store.Keys(ctx, prefix, after, maxPage)
			if err != nil {
				yield("", err)
				return
			}
			for _, k := range keys {
				if !yield(k, nil) {
					return
				}
			}
			if !more || len(keys) == 0 {
				return
			}
			after = keys[len(keys)-1]
		}
	}
}
