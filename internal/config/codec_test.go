package config

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

func TestBufferPool(t *testing.T) {
	if DefaultMaxMessageSize+Slack > 1<<maxPooled {
		t.Fatalf("a message of the default size limit (%d bytes and %d of slack) is not pooled: the top tier is %d", DefaultMaxMessageSize, Slack, 1<<maxPooled)
	}
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 40 << 10, 1 << 20, 1<<20 + 1, DefaultMaxMessageSize + Slack, 1<<maxPooled + 1} {
		b := BufferPool.Get(n)
		if len(*b) != n || cap(*b) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		if n > 0 && n <= 1<<maxPooled && cap(*b) >= 4*max(n, 256) { // tier k holds capacities in [2^k, 2^(k+1))
			t.Errorf("Get(%d): capacity %d, far more than the tier needs", n, cap(*b))
		}
		BufferPool.Put(b)
	}
	// A buffer put back serves a later Get of any size its tier covers.
	for range 100 {
		b := BufferPool.Get(3000)
		BufferPool.Put(b)
		c := BufferPool.Get(2049)
		if len(*c) != 2049 || cap(*c) < 2049 {
			t.Fatalf("len %d cap %d", len(*c), cap(*c))
		}
		BufferPool.Put(c)
	}
	// A message of 1 MiB of payload encodes to just over 1 MiB: its buffer
	// is pooled, and a later one reuses it (the race detector makes
	// sync.Pool drop some, so one reuse in many tries is the promise).
	reused := false
	for range 100 {
		b := BufferPool.Get(1<<20 + 64)
		BufferPool.Put(b)
		c := BufferPool.Get(1<<20 + 64)
		reused = reused || &(*b)[:1][0] == &(*c)[:1][0]
		BufferPool.Put(c)
	}
	if !reused {
		t.Error("a buffer for a 1 MiB message was never reused")
	}
	// Odd capacities go to the tier below them.
	odd := make([]byte, 5000)
	BufferPool.Put(&odd)
	if b := BufferPool.Get(4096); cap(*b) < 4096 {
		t.Fatalf("cap %d", cap(*b))
	}
}

func TestCodec(t *testing.T) {
	for _, size := range []int{10, 100 << 10} {
		m := &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: "a.b", Payload: bytes.Repeat([]byte("x"), size), Sequence: 7}
		data, err := Codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := proto.Marshal(m)
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("size %d: encoding differs from proto.Marshal", size)
		}
		var back palmv1.PalmMessage
		if err := Codec.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		data.Free()
		if !proto.Equal(m, &back) {
			t.Fatalf("size %d: round trip changed the message", size)
		}
	}
	if _, err := Codec.Marshal("not a message"); err == nil || !strings.Contains(err.Error(), "not a protobuf message") {
		t.Errorf("Marshal(string): %v", err)
	}
	if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{1})}, new(int)); err == nil {
		t.Error("Unmarshal into an int: no error")
	}
	if Codec.Name() != "proto" {
		t.Errorf("name %q: peers expect the proto content-subtype", Codec.Name())
	}
}
