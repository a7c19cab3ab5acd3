package kv

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// This file is the server side of palm.v1.CacheService: the unary RPCs Get,
// Set, Delete and Keys, each served by one call on a Store. It starts no
// goroutines and holds no state of its own besides its settings; concurrency
// is the Store's.

// DefaultMaxValueSize is the largest value, in bytes, the CacheService
// stores unless told otherwise by WithMaxValueSize: 4 MiB.
const DefaultMaxValueSize = 4 << 20

// maxKeysPage is the most keys one Keys RPC returns.
const maxKeysPage = 1000

// ServiceOption configures NewService: WithMaxValueSize, WithLogger. A nil
// ServiceOption is ignored; when options conflict, the last one wins.
type ServiceOption func(*service)

// WithMaxValueSize sets the largest value, in bytes, Set accepts; a larger
// value is refused with ResourceExhausted naming both sizes. Default:
// DefaultMaxValueSize (4 MiB). gRPC's own message size limit (4 MiB on the
// server by default) still applies on top; raise it with
// grpc.MaxRecvMsgSize to store larger values. WithMaxValueSize panics if n
// is not positive.
func WithMaxValueSize(n int) ServiceOption {
	if n <= 0 {
		panic(fmt.Sprintf("kv.WithMaxValueSize(%d): the size must be positive", n))
	}
	return func(s *service) { s.maxValueSize = n }
}

// WithLogger sets the logger the CacheService logs through; it uses the
// sub-logger l.Named("cache"), and logs store failures (Internal errors) at
// Error and each request at Trace. Default, or with a nil l: no logging
// (hclog.NewNullLogger).
func WithLogger(l hclog.Logger) ServiceOption {
	return func(s *service) {
		if l != nil {
			s.log = l.Named("cache")
		}
	}
}

// NewService returns the gRPC CacheService serving store; register it with
// palmv1.RegisterCacheServiceServer. It does no I/O.
//
// The service validates every request before it reaches the store: a key
// that is not 1 to MaxKeyLen bytes of UTF-8 (or, for Set only, empty) is
// refused with InvalidArgument, and a value over the limit with
// ResourceExhausted. Set with an empty key stores the value under a new key
// from NewKey and returns it. Keys returns at most 1000 keys per call (a
// limit of 0 means 1000). Store errors go to the client through ToStatus;
// a client turns them back with FromStatus. The service is safe for
// concurrent use when store is, as every Store must be.
func NewService(store Store, opts ...ServiceOption) palmv1.CacheServiceServer {
	s := &service{
		store:        store,
		maxValueSize: DefaultMaxValueSize,
		log:          hclog.NewNullLogger(),
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

type service struct {
	palmv1.UnimplementedCacheServiceServer

	store        Store
	maxValueSize int
	log          hclog.Logger
}

func (s *service) Get(ctx context.Context, req *palmv1.GetRequest) (*palmv1.GetResponse, error) {
	s.log.Trace("get", "key", req.GetKey())
	if err := ValidKey(req.GetKey()); err != nil {
		return nil, ToStatus(err)
	}
	v, err := s.store.Get(ctx, req.GetKey())
	if err != nil {
		return nil, s.fail("get", err, "key", req.GetKey())
	}
	return &palmv1.GetResponse{Value: v}, nil
}

func (s *service) Set(ctx context.Context, req *palmv1.SetRequest) (*palmv1.SetResponse, error) {
	key, value := req.GetKey(), req.GetValue()
	s.log.Trace("set", "key", key, "size", len(value))
	if key != "" {
		if err := ValidKey(key); err != nil {
			return nil, ToStatus(err)
		}
	}
	if len(value) > s.maxValueSize {
		return nil, ToStatus(tooLarge(len(value), s.maxValueSize))
	}
	if key == "" {
		key = NewKey()
	}
	if err := s.store.Set(ctx, key, value); err != nil {
		return nil, s.fail("set", err, "key", key)
	}
	return &palmv1.SetResponse{Key: key}, nil
}

func (s *service) Delete(ctx context.Context, req *palmv1.DeleteRequest) (*palmv1.DeleteResponse, error) {
	s.log.Trace("delete", "key", req.GetKey())
	if err := ValidKey(req.GetKey()); err != nil {
		return nil, ToStatus(err)
	}
	deleted, err := s.store.Delete(ctx, req.GetKey())
	if err != nil {
		return nil, s.fail("delete", err, "key", req.GetKey())
	}
	return &palmv1.DeleteResponse{Deleted: deleted}, nil
}

func (s *service) Keys(ctx context.Context, req *palmv1.KeysRequest) (*palmv1.KeysResponse, error) {
	prefix, after := req.GetPrefix(), req.GetStartAfter()
	limit := int(req.GetLimit())
	if limit == 0 || limit > maxKeysPage {
		limit = maxKeysPage
	}
	s.log.Trace("keys", "prefix", prefix, "start_after", after, "limit", limit)
	if !utf8.ValidString(prefix) {
		return nil, status.Errorf(codes.InvalidArgument, "prefix %q is not valid UTF-8", prefix)
	}
	if !utf8.ValidString(after) {
		return nil, status.Errorf(codes.InvalidArgument, "start_after %q is not valid UTF-8", after)
	}
	keys, more, err := s.store.Keys(ctx, prefix, after, limit)
	if err != nil {
		return nil, s.fail("keys", err, "prefix", prefix)
	}
	return &palmv1.KeysResponse{Keys: keys, More: more}, nil
}

// fail turns a store error into a status error, logging it when it is not
// one of the expected kinds.
func (s *service) fail(rpc string, err error, kv ...any) error {
	st := ToStatus(err)
	if status.Code(st) == codes.Internal {
		s.log.Error("store failed", append([]any{"rpc", rpc, "error", err}, kv...)...)
	}
	return st
}
