// Package kv is the key-value cache every palm server carries: a Store
// interface, an in-memory Store (Memory), and the gRPC CacheService that
// serves any Store over the wire.
//
// Keys are UTF-8 strings of 1 to MaxKeyLen bytes; values are bytes, and an
// empty value is a value, not a missing key. Errors are the sentinels
// ErrNotFound, ErrInvalidKey, ErrTooLarge and ErrQuota, matched with
// errors.Is; ToStatus and FromStatus carry them across gRPC so errors.Is
// still holds after a round trip.
//
// Bounds. A Memory store holds at most DefaultMaxBytes (64 MiB) and
// DefaultMaxKeys (100,000 keys) unless NewMemory is given MaxBytes and
// MaxKeys; bytes count each key and value plus EntryOverhead (64 bytes) an
// entry, which covers the heap an entry really takes. A Set past either
// quota fails with ErrQuota (RESOURCE_EXHAUSTED on the wire, with an
// ErrorInfo of reason QuotaReason) and changes nothing; replacing a value
// counts the difference in size, and Delete frees the entry. The
// CacheService refuses a value over DefaultMaxValueSize (4 MiB, see
// WithMaxValueSize) with ErrTooLarge, and returns at most 1000 keys a page.
// Keys walks an ordered index under a read lock, so a page costs
// O(log n + limit) and holds writers back for that page only.
//
// Using a Store:
//
//	store := kv.NewMemory() // or kv.NewMemory(kv.MaxBytes(1<<30), kv.MaxKeys(1_000_000))
//	_ = store.Set(ctx, "greeting", []byte("hello"))
//	v, err := store.Get(ctx, "greeting") // "hello", nil
//	_, err = store.Get(ctx, "nothing")   // errors.Is(err, kv.ErrNotFound)
//	err = store.Set(ctx, "k", tooMuch)   // errors.Is(err, kv.ErrQuota) past a quota
//
// Serving it:
//
//	s := grpc.NewServer()
//	palmv1.RegisterCacheServiceServer(s, kv.NewService(store))
//
// Package kvtest holds the contract suite every Store implementation must
// pass.
package kv
