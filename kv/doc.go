// Package kv is the key-value cache every palm server carries: a Store
// interface, an in-memory Store (Memory), and the gRPC CacheService that
// serves any Store over the wire.
//
// Keys are UTF-8 strings of 1 to MaxKeyLen bytes; values are bytes, and an
// empty value is a value, not a missing key. Errors are the sentinels
// ErrNotFound, ErrInvalidKey and ErrTooLarge, matched with errors.Is; ToStatus
// and FromStatus carry them across gRPC so errors.Is still holds after a
// round trip.
//
// Using a Store:
//
//	store := kv.NewMemory()
//	_ = store.Set(ctx, "greeting", []byte("hello"))
//	v, err := store.Get(ctx, "greeting") // "hello", nil
//	_, err = store.Get(ctx, "nothing")   // errors.Is(err, kv.ErrNotFound)
//
// Serving it:
//
//	s := grpc.NewServer()
//	palmv1.RegisterCacheServiceServer(s, kv.NewService(store))
//
// Package kvtest holds the contract suite every Store implementation must
// pass.
package kv
