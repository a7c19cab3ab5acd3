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
