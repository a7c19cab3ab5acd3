package kv_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/gopalm/palm/kv"
)

func ExampleMemory() {
	ctx := context.Background()
	store := kv.NewMemory()

	_ = store.Set(ctx, "fruit/apple", []byte("red"))
	_ = store.Set(ctx, "fruit/banana", []byte("yellow"))
	_ = store.Set(ctx, "fruit/cherry", []byte{}) // an empty value is a value
	_ = store.Set(ctx, "veg/leek", []byte("green"))

	v, _ := store.Get(ctx, "fruit/apple")
	fmt.Printf("apple: %s\n", v)

	_, err := store.Get(ctx, "fruit/durian")
	fmt.Println(err, errors.Is(err, kv.ErrNotFound))

	keys, more, _ := store.Keys(ctx, "fruit/", "", 2)
	fmt.Println(keys, more)
	keys, more, _ = store.Keys(ctx, "fruit/", keys[len(keys)-1], 2)
	fmt.Println(keys, more)

	deleted, _ := store.Delete(ctx, "veg/leek")
	n, _ := store.Len(ctx)
	fmt.Println(deleted, n)
	// Output:
	// apple: red
	// key "fruit/durian" not found true
	// [fruit/apple fruit/banana] true
	// [fruit/cherry] false
	// true 3
}

func ExampleMaxKeys() {
	ctx := context.Background()
	store := kv.NewMemory(kv.MaxKeys(2), kv.MaxBytes(1<<20))

	_ = store.Set(ctx, "a", []byte("1"))
	_ = store.Set(ctx, "b", []byte("2"))
	err := store.Set(ctx, "c", []byte("3"))
	fmt.Println(errors.Is(err, kv.ErrQuota))
	fmt.Println(err)

	// Replacing a value adds no key; deleting one frees its place.
	fmt.Println(store.Set(ctx, "a", []byte("one")))
	_, _ = store.Delete(ctx, "b")
	fmt.Println(store.Set(ctx, "c", []byte("3")))

	u := store.Usage()
	fmt.Println(u.Keys, u.Bytes, u.MaxBytes)
	// Output:
	// true
	// cache is full: the limit is 2 keys and it holds 2; delete keys, or raise the limit (kv.MaxKeys, palm --cache-max-keys)
	// <nil>
	// <nil>
	// 2 134 1048576
}
