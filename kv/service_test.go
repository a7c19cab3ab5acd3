package kv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/kv/kvtest"
)

// serve serves a CacheService over store on an in-memory listener and
// returns a client for it. Everything is stopped when the test ends.
func serve(t *testing.T, store kv.Store, opts ...kv.ServiceOption) palmv1.CacheServiceClient {
	t.Helper()
	return palmv1.NewCacheServiceClient(serveConn(t, store, opts...))
}

// serveConn is serve's connection.
func serveConn(t *testing.T, store kv.Store, opts ...kv.ServiceOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	palmv1.RegisterCacheServiceServer(srv, kv.NewService(store, opts...))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// testLogger returns a logger that writes to the test's log.
func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Trace})
}

// The contract holds over the wire: kv.NewClient over a CacheService of a
// Memory store.
func TestServiceContract(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		return kv.NewClient(serveConn(t, kv.NewMemory(), kv.WithLogger(testLogger(t))))
	})
}

// A view under a prefix keeps its keys under it, lists and counts only
// them (without the prefix), pages by its own keys, and refuses a key that
// is too long once prefixed; locally and over the wire.
func TestPrefix(t *testing.T) {
	for name, newBase := range map[string]func(t *testing.T) kv.Store{
		"memory": func(*testing.T) kv.Store { return kv.NewMemory() },
		"remote": func(t *testing.T) kv.Store { return kv.NewClient(serveConn(t, kv.NewMemory())) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			base := newBase(t)
			view := kv.Prefix(base, "s1.")
			other := kv.Prefix(base, "s2.")
			for _, k := range []string{"b", "a", "c/1", "c/2"} {
				if err := view.Set(ctx, k, []byte("v"+k)); err != nil {
					t.Fatal(err)
				}
			}
			if err := other.Set(ctx, "a", []byte("other")); err != nil {
				t.Fatal(err)
			}
			if v, err := base.Get(ctx, "s1.a"); err != nil || string(v) != "va" {
				t.Errorf("the base holds s1.a = %q, %v; want va", v, err)
			}
			if v, err := other.Get(ctx, "a"); err != nil || string(v) != "other" {
				t.Errorf("the other view's a = %q, %v", v, err)
			}
			keys, more, err := view.Keys(ctx, "", "a", 2)
			if err != nil || !slices.Equal(keys, []string{"b", "c/1"}) || !more {
				t.Errorf("Keys after a, 2 = %q, %v, %v; want [b c/1], more", keys, more, err)
			}
			keys, more, err = view.Keys(ctx, "c/", "", 0)
			if err != nil || !slices.Equal(keys, []string{"c/1", "c/2"}) || more {
				t.Errorf("Keys(c/) = %q, %v, %v", keys, more, err)
			}
			var all []string
			for k, err := range kv.All(ctx, view, "") {
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, k)
			}
			if !slices.Equal(all, []string{"a", "b", "c/1", "c/2"}) {
				t.Errorf("All = %q", all)
			}
			if n, err := view.Len(ctx); err != nil || n != 4 {
				t.Errorf("Len = %d, %v; want 4", n, err)
			}
			if ok, err := view.Delete(ctx, "a"); err != nil || !ok {
				t.Errorf("Delete(a) = %v, %v", ok, err)
			}
			if _, err := other.Get(ctx, "a"); err != nil {
				t.Errorf("deleting the view's a touched the other's: %v", err)
			}
			long := strings.Repeat("k", kv.MaxKeyLen-2)
			if err := view.Set(ctx, long, nil); !errors.Is(err, kv.ErrInvalidKey) || !strings.Contains(err.Error(), `key is 4094 bytes; the limit under prefix "s1." is 4093 bytes`) {
				t.Errorf("Set of a key too long once prefixed = %v; want ErrInvalidKey naming the view's limit", err)
			}
			if _, err := view.Get(ctx, ""); !errors.Is(err, kv.ErrInvalidKey) {
				t.Errorf("Get(\"\") = %v; want ErrInvalidKey", err)
			}
		})
	}
	if s := kv.NewMemory(); kv.Prefix(s, "") != kv.Store(s) {
		t.Error("Prefix with no prefix is not the store itself")
	}
}

func TestServiceRPCs(t *testing.T) {
	ctx := t.Context()
	store := kv.NewMemory()
	c := serve(t, store, kv.WithLogger(testLogger(t)))

	if resp, err := c.Set(ctx, &palmv1.SetRequest{Key: "a", Value: []byte("1")}); err != nil || resp.GetKey() != "a" {
		t.Fatalf("Set(a) = %v, %v; want key a", resp, err)
	}
	if resp, err := c.Get(ctx, &palmv1.GetRequest{Key: "a"}); err != nil || string(resp.GetValue()) != "1" {
		t.Fatalf("Get(a) = %v, %v; want 1", resp, err)
	}

	// An empty key makes the service choose one.
	resp, err := c.Set(ctx, &palmv1.SetRequest{Value: []byte("chosen")})
	if err != nil || kv.ValidKey(resp.GetKey()) != nil {
		t.Fatalf("Set(empty key) = %v, %v; want a new valid key", resp, err)
	}
	if v, err := store.Get(ctx, resp.GetKey()); err != nil || string(v) != "chosen" {
		t.Fatalf("store.Get(chosen key %q) = %q, %v", resp.GetKey(), v, err)
	}
	resp2, err := c.Set(ctx, &palmv1.SetRequest{Value: []byte("chosen")})
	if err != nil || resp2.GetKey() == resp.GetKey() {
		t.Fatalf("second Set(empty key) = %v, %v; want a different key from %q", resp2, err, resp.GetKey())
	}

	// An empty value is a value.
	if _, err := c.Set(ctx, &palmv1.SetRequest{Key: "empty"}); err != nil {
		t.Fatalf("Set(empty value): %v", err)
	}
	if resp, err := c.Get(ctx, &palmv1.GetRequest{Key: "empty"}); err != nil || len(resp.GetValue()) != 0 {
		t.Fatalf("Get(empty) = %v, %v; want an empty value", resp, err)
	}

	if resp, err := c.Delete(ctx, &palmv1.DeleteRequest{Key: "a"}); err != nil || !resp.GetDeleted() {
		t.Fatalf("Delete(a) = %v, %v; want deleted", resp, err)
	}
	if resp, err := c.Delete(ctx, &palmv1.DeleteRequest{Key: "a"}); err != nil || resp.GetDeleted() {
		t.Fatalf("Delete(a) again = %v, %v; want not deleted", resp, err)
	}

	// Keys pages are capped at 1000.
	for i := range 1500 {
		if err := store.Set(ctx, fmt.Sprintf("many/%04d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		limit uint32
		n     int
		more  bool
	}{{0, 1000, true}, {5000, 1000, true}, {1000, 1000, true}, {10, 10, true}, {1500, 1000, true}} {
		resp, err := c.Keys(ctx, &palmv1.KeysRequest{Prefix: "many/", Limit: tt.limit})
		if err != nil || len(resp.GetKeys()) != tt.n || resp.GetMore() != tt.more {
			t.Errorf("Keys(limit %d) = %d keys, more %v, %v; want %d, %v",
				tt.limit, len(resp.GetKeys()), resp.GetMore(), err, tt.n, tt.more)
		}
	}
	last, err := c.Keys(ctx, &palmv1.KeysRequest{Prefix: "many/", StartAfter: "many/0999"})
	if err != nil || len(last.GetKeys()) != 500 || last.GetMore() || last.GetKeys()[0] != "many/1000" {
		t.Errorf("Keys(after many/0999) = %d keys from %q, more %v, %v; want 500 from many/1000, no more",
			len(last.GetKeys()), last.GetKeys(), last.GetMore(), err)
	}
}

// errStore is a Store whose every call fails with err.
type errStore struct{ err error }

func (s errStore) Get(context.Context, string) ([]byte, error)  { return nil, s.err }
func (s errStore) Set(context.Context, string, []byte) error    { return s.err }
func (s errStore) Delete(context.Context, string) (bool, error) { return false, s.err }
func (s errStore) Len(context.Context) (int, error)             { return 0, s.err }
func (s errStore) Keys(context.Context, string, string, int) ([]string, bool, error) {
	return nil, false, s.err
}

// TestServiceErrors checks each status code the service sends, over the
// wire, and that FromStatus turns it back into the matching sentinel.
func TestServiceErrors(t *testing.T) {
	ctx := t.Context()
	long := strings.Repeat("k", 5000)
	tests := []struct {
		name     string
		store    kv.Store
		call     func(c palmv1.CacheServiceClient) error
		code     codes.Code
		msg      string
		sentinel error
	}{
		{
			name:  "get missing",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Get(ctx, &palmv1.GetRequest{Key: "abc"})
				return err
			},
			code: codes.NotFound, msg: `key "abc" not found`, sentinel: kv.ErrNotFound,
		},
		{
			name:  "get empty key",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Get(ctx, &palmv1.GetRequest{})
				return err
			},
			code: codes.InvalidArgument, msg: "key is empty", sentinel: kv.ErrInvalidKey,
		},
		{
			name:  "get long key",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Get(ctx, &palmv1.GetRequest{Key: long})
				return err
			},
			code: codes.InvalidArgument, msg: "key is 5000 bytes; the limit is 4096 bytes", sentinel: kv.ErrInvalidKey,
		},
		{
			name:  "set long key",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Set(ctx, &palmv1.SetRequest{Key: long, Value: []byte("v")})
				return err
			},
			code: codes.InvalidArgument, msg: "key is 5000 bytes; the limit is 4096 bytes", sentinel: kv.ErrInvalidKey,
		},
		{
			name:  "delete empty key",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Delete(ctx, &palmv1.DeleteRequest{})
				return err
			},
			code: codes.InvalidArgument, msg: "key is empty", sentinel: kv.ErrInvalidKey,
		},
		{
			name:  "set value too large",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Set(ctx, &palmv1.SetRequest{Key: "k", Value: make([]byte, 101)})
				return err
			},
			code: codes.ResourceExhausted, msg: "value is 101 bytes; the limit is 100 bytes", sentinel: kv.ErrTooLarge,
		},
		{
			name:  "set value too large, empty key",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Set(ctx, &palmv1.SetRequest{Value: make([]byte, 101)})
				return err
			},
			code: codes.ResourceExhausted, msg: "value is 101 bytes; the limit is 100 bytes", sentinel: kv.ErrTooLarge,
		},
		{
			name:  "store failure",
			store: errStore{errors.New("disk on fire")},
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Keys(ctx, &palmv1.KeysRequest{})
				return err
			},
			code: codes.Internal, msg: "disk on fire",
		},
		{
			name:  "store not found, wrapped",
			store: errStore{fmt.Errorf("shard 3: %w", kv.ErrNotFound)},
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Delete(ctx, &palmv1.DeleteRequest{Key: "k"})
				return err
			},
			code: codes.NotFound, msg: "shard 3: kv: key not found", sentinel: kv.ErrNotFound,
		},
		{
			name:  "store too large",
			store: errStore{fmt.Errorf("quota: %w", kv.ErrTooLarge)},
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Set(ctx, &palmv1.SetRequest{Key: "k"})
				return err
			},
			code: codes.ResourceExhausted, msg: "quota: kv: value too large", sentinel: kv.ErrTooLarge,
		},
		{
			name:  "set past the key quota",
			store: kv.NewMemory(kv.MaxKeys(1)),
			call: func(c palmv1.CacheServiceClient) error {
				if _, err := c.Set(ctx, &palmv1.SetRequest{Key: "a"}); err != nil {
					return err
				}
				_, err := c.Set(ctx, &palmv1.SetRequest{Key: "b"})
				return err
			},
			code: codes.ResourceExhausted, sentinel: kv.ErrQuota,
			msg: "cache is full: the limit is 1 key and it holds 1; delete keys, or raise the limit " +
				"(kv.MaxKeys, palm --cache-max-keys)",
		},
		{
			name:  "set past the byte quota",
			store: kv.NewMemory(kv.MaxBytes(200)),
			call: func(c palmv1.CacheServiceClient) error {
				if _, err := c.Set(ctx, &palmv1.SetRequest{Key: "a", Value: make([]byte, 10)}); err != nil {
					return err
				}
				_, err := c.Set(ctx, &palmv1.SetRequest{Key: "bb", Value: make([]byte, 90)})
				return err
			},
			code: codes.ResourceExhausted, sentinel: kv.ErrQuota,
			msg: `cache is full: storing key "bb" needs 156 bytes more, but 75 bytes of the limit ` +
				"of 200 bytes are in use, by 1 key; delete keys, or raise the limit " +
				"(kv.MaxBytes, palm --cache-max-bytes)",
		},
		{
			name:  "store quota, wrapped",
			store: errStore{fmt.Errorf("shard 2: %w", kv.ErrQuota)},
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Set(ctx, &palmv1.SetRequest{Key: "k"})
				return err
			},
			code: codes.ResourceExhausted, msg: "shard 2: kv: cache quota exceeded", sentinel: kv.ErrQuota,
		},
		{
			name:  "store cancelled",
			store: errStore{context.Canceled},
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Get(ctx, &palmv1.GetRequest{Key: "k"})
				return err
			},
			code: codes.Canceled, msg: "context canceled", sentinel: context.Canceled,
		},
		{
			name:  "store deadline",
			store: errStore{fmt.Errorf("waiting for lock: %w", context.DeadlineExceeded)},
			call: func(c palmv1.CacheServiceClient) error {
				_, err := c.Get(ctx, &palmv1.GetRequest{Key: "k"})
				return err
			},
			code: codes.DeadlineExceeded, msg: "waiting for lock: context deadline exceeded", sentinel: context.DeadlineExceeded,
		},
		{
			name:  "client cancelled",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := c.Get(ctx, &palmv1.GetRequest{Key: "k"})
				return err
			},
			code: codes.Canceled, sentinel: context.Canceled,
		},
		{
			name:  "client deadline",
			store: kv.NewMemory(),
			call: func(c palmv1.CacheServiceClient) error {
				ctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
				defer cancel()
				_, err := c.Get(ctx, &palmv1.GetRequest{Key: "k"})
				return err
			},
			code: codes.DeadlineExceeded, sentinel: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, tt.store, kv.WithMaxValueSize(100), kv.WithLogger(testLogger(t)))
			err := tt.call(c)
			if st, ok := status.FromError(err); !ok || st.Code() != tt.code || (tt.msg != "" && st.Message() != tt.msg) {
				t.Fatalf("error = %v; want code %v, message %q", err, tt.code, tt.msg)
			}
			got := kv.FromStatus(err)
			if tt.sentinel != nil && !errors.Is(got, tt.sentinel) {
				t.Errorf("errors.Is(FromStatus(%v), %v) = false", err, tt.sentinel)
			}
			// Both are ResourceExhausted; only the status detail tells them apart.
			for _, pair := range [][2]error{{kv.ErrQuota, kv.ErrTooLarge}, {kv.ErrTooLarge, kv.ErrQuota}} {
				if tt.sentinel == pair[0] && errors.Is(got, pair[1]) {
					t.Errorf("FromStatus(%v) matches %v too", err, pair[1])
				}
			}
			if status.Code(got) != tt.code {
				t.Errorf("status.Code(FromStatus(err)) = %v; want %v", status.Code(got), tt.code)
			}
			if tt.sentinel != nil && tt.msg != "" && got.Error() != tt.msg {
				t.Errorf("FromStatus(err).Error() = %q; want %q", got.Error(), tt.msg)
			}
		})
	}
}

// TestServiceDirect calls the service without gRPC, for what the generated
// client cannot send (invalid UTF-8) or what is slow to send (4 MiB).
func TestServiceDirect(t *testing.T) {
	ctx := t.Context()
	svc := kv.NewService(kv.NewMemory())
	check := func(name string, err error, code codes.Code, msg string) {
		t.Helper()
		if st, _ := status.FromError(err); st.Code() != code || st.Message() != msg {
			t.Errorf("%s: error = %v; want %v %q", name, err, code, msg)
		}
	}
	_, err := svc.Get(ctx, &palmv1.GetRequest{Key: "a\xff"})
	check("Get(invalid UTF-8)", err, codes.InvalidArgument, `key "a\xff" is not valid UTF-8`)
	_, err = svc.Set(ctx, &palmv1.SetRequest{Key: "a\xff"})
	check("Set(invalid UTF-8)", err, codes.InvalidArgument, `key "a\xff" is not valid UTF-8`)
	_, err = svc.Delete(ctx, &palmv1.DeleteRequest{Key: "a\xff"})
	check("Delete(invalid UTF-8)", err, codes.InvalidArgument, `key "a\xff" is not valid UTF-8`)
	_, err = svc.Keys(ctx, &palmv1.KeysRequest{Prefix: "a\xff"})
	check("Keys(invalid prefix)", err, codes.InvalidArgument, `prefix "a\xff" is not valid UTF-8`)
	_, err = svc.Keys(ctx, &palmv1.KeysRequest{StartAfter: "a\xff"})
	check("Keys(invalid start_after)", err, codes.InvalidArgument, `start_after "a\xff" is not valid UTF-8`)

	_, err = svc.Set(ctx, &palmv1.SetRequest{Key: "big", Value: make([]byte, kv.DefaultMaxValueSize+1)})
	check("Set(4 MiB + 1)", err, codes.ResourceExhausted, "value is 4194305 bytes; the limit is 4194304 bytes")
	if _, err := svc.Set(ctx, &palmv1.SetRequest{Key: "big", Value: make([]byte, kv.DefaultMaxValueSize)}); err != nil {
		t.Errorf("Set(4 MiB) = %v; want nil", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = svc.Get(cancelled, &palmv1.GetRequest{Key: "big"})
	check("Get(cancelled)", err, codes.Canceled, "context canceled")
}

func TestServiceLogsStoreFailures(t *testing.T) {
	var buf bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(&buf, t.Output()), Level: hclog.Info})
	svc := kv.NewService(errStore{errors.New("disk on fire")}, kv.WithLogger(logger))
	if _, err := svc.Get(t.Context(), &palmv1.GetRequest{Key: "k"}); status.Code(err) != codes.Internal {
		t.Fatalf("Get = %v; want Internal", err)
	}
	if _, err := kv.NewService(errStore{kv.ErrNotFound}, kv.WithLogger(logger)).Get(t.Context(), &palmv1.GetRequest{Key: "k"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Get = %v; want NotFound", err)
	}
	out := buf.String()
	if !strings.Contains(out, "cache: store failed") || !strings.Contains(out, "disk on fire") || !strings.Contains(out, "rpc=get") {
		t.Errorf("log = %q; want the store failure", out)
	}
	if strings.Count(out, "store failed") != 1 {
		t.Errorf("log = %q; want only the Internal failure logged", out)
	}
}

func TestWithMaxValueSizePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "must be positive") {
			t.Errorf("WithMaxValueSize(0) recovered %v; want a panic saying the size must be positive", r)
		}
	}()
	kv.WithMaxValueSize(0)
}

func TestToStatus(t *testing.T) {
	remote := status.Error(codes.Unavailable, "server gone")
	tests := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("get: %w", kv.ErrNotFound), codes.NotFound, "get: kv: key not found"},
		{kv.ErrInvalidKey, codes.InvalidArgument, "kv: invalid key"},
		{kv.ErrTooLarge, codes.ResourceExhausted, "kv: value too large"},
		{kv.ErrQuota, codes.ResourceExhausted, "kv: cache quota exceeded"},
		{context.Canceled, codes.Canceled, "context canceled"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "context deadline exceeded"},
		{errors.New("boom"), codes.Internal, "boom"},
		{remote, codes.Unavailable, "server gone"},
		{kv.FromStatus(status.Error(codes.NotFound, `key "x" not found`)), codes.NotFound, `key "x" not found`},
	}
	for _, tt := range tests {
		st, ok := status.FromError(kv.ToStatus(tt.err))
		if !ok || st.Code() != tt.code || st.Message() != tt.msg {
			t.Errorf("ToStatus(%v) = %v; want %v %q", tt.err, st.Err(), tt.code, tt.msg)
		}
	}
	if kv.ToStatus(nil) != nil {
		t.Error("ToStatus(nil) != nil")
	}
}

func TestFromStatusLeavesOthers(t *testing.T) {
	if kv.FromStatus(nil) != nil {
		t.Error("FromStatus(nil) != nil")
	}
	plain := errors.New("plain")
	if got := kv.FromStatus(plain); got != plain {
		t.Errorf("FromStatus(plain) = %v; want it unchanged", got)
	}
	unavailable := status.Error(codes.Unavailable, "server gone")
	if got := kv.FromStatus(unavailable); got != unavailable {
		t.Errorf("FromStatus(Unavailable) = %v; want it unchanged", got)
	}
	for _, s := range []error{kv.ErrNotFound, kv.ErrInvalidKey, kv.ErrTooLarge, kv.ErrQuota, context.Canceled, context.DeadlineExceeded} {
		if got := kv.FromStatus(status.Error(codes.Internal, "x")); errors.Is(got, s) {
			t.Errorf("FromStatus(Internal) matches %v", s)
		}
	}
}

func TestServiceLimitsContract(t *testing.T) {
	kvtest.RunLimits(t, func(t *testing.T, l kvtest.Limits) kv.Store {
		store := kv.NewMemory(kv.MaxBytes(l.MaxBytes), kv.MaxKeys(l.MaxKeys))
		return kv.NewClient(serveConn(t, store, kv.WithLogger(testLogger(t))))
	})
}

// TestQuotaStatusDetail checks that the status of an ErrQuota error carries
// the ErrorInfo that tells it from ErrTooLarge, for clients in any language,
// and that FromStatus reads it and nothing else.
func TestQuotaStatusDetail(t *testing.T) {
	st := status.Convert(kv.ToStatus(fmt.Errorf("set: %w", kv.ErrQuota)))
	var found bool
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == kv.QuotaReason && info.GetDomain() == kv.ErrorDomain {
			found = true
		}
	}
	if st.Code() != codes.ResourceExhausted || !found {
		t.Fatalf("ToStatus(ErrQuota) = %v with details %v; want ResourceExhausted with ErrorInfo %s/%s",
			st.Code(), st.Details(), kv.ErrorDomain, kv.QuotaReason)
	}
	other, _ := status.New(codes.ResourceExhausted, "full").WithDetails(&errdetails.ErrorInfo{Reason: kv.QuotaReason, Domain: "example.com"})
	for name, err := range map[string]error{
		"no detail":          status.Error(codes.ResourceExhausted, "full"),
		"another domain":     other.Err(),
		"ToStatus(TooLarge)": kv.ToStatus(kv.ErrTooLarge),
	} {
		got := kv.FromStatus(err)
		if errors.Is(got, kv.ErrQuota) || !errors.Is(got, kv.ErrTooLarge) {
			t.Errorf("FromStatus(%s) = %v; want kv.ErrTooLarge, not kv.ErrQuota", name, got)
		}
	}
	if got := kv.FromStatus(st.Err()); !errors.Is(got, kv.ErrQuota) || kv.ToStatus(got).Error() != st.Err().Error() {
		t.Errorf("FromStatus(ToStatus(ErrQuota)) = %v; want kv.ErrQuota, the same status again through ToStatus", got)
	}
}
