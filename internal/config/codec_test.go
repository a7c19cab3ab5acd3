package config

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/wrapperspb"

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

// palmMessageTypes returns every message type of palm.v1 (map entries
// aside), each of which must have the generated vtprotobuf methods: without
// them the tests below compare protobuf-go with itself.
func palmMessageTypes(t *testing.T) []protoreflect.MessageType {
	t.Helper()
	var types []protoreflect.MessageType
	protoregistry.GlobalFiles.RangeFilesByPackage("palm.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Messages().Len() {
			md := fd.Messages().Get(i)
			if md.Messages().Len() != 0 && !md.Messages().Get(0).IsMapEntry() {
				t.Errorf("%s has nested message types: make palmMessageTypes list them", md.FullName())
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := mt.New().Interface().(vtMessage); !ok {
				t.Errorf("%s has no vtprotobuf methods: run buf generate", md.FullName())
			}
			types = append(types, mt)
		}
		return true
	})
	slices.SortFunc(types, func(a, b protoreflect.MessageType) int {
		return strings.Compare(string(a.Descriptor().FullName()), string(b.Descriptor().FullName()))
	})
	names := map[protoreflect.FullName]bool{}
	for _, mt := range types {
		names[mt.Descriptor().FullName()] = true
	}
	for _, want := range []protoreflect.FullName{
		"palm.v1.PalmMessage", "palm.v1.Error", "palm.v1.StreamRequest", "palm.v1.StreamResponse",
		"palm.v1.EvalRequest", "palm.v1.EvalResponse", "palm.v1.WorkRequest", "palm.v1.WorkResponse",
		"palm.v1.Task", "palm.v1.TaskResult", "palm.v1.TaskDone", "palm.v1.Hello", "palm.v1.Welcome",
		"palm.v1.GetRequest", "palm.v1.SetRequest", "palm.v1.KeysResponse", "palm.v1.InfoResponse",
		"palm.v1.SubscribeRequest", "palm.v1.SubscribeResponse", "palm.v1.Publication",
	} {
		if !names[want] {
			t.Errorf("%s is not among palm's registered message types", want)
		}
	}
	return types
}

// populate sets every field of m and of the messages inside it: scalars to
// values far from zero (a negative stage takes ten bytes), strings to
// UTF-8 of several bytes a rune, lists to two elements, maps to entries
// entries; unknown, when set, goes into every message as unknown fields.
func populate(t *testing.T, m protoreflect.Message, entries int, unknown []byte) {
	t.Helper()
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := range entries {
				mp.Set(scalar(t, fd.MapKey(), j).MapKey(), scalar(t, fd.MapValue(), j))
			}
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := m.Mutable(fd).List()
			for range 2 {
				e := l.NewElement()
				populate(t, e.Message(), entries, unknown)
				l.Append(e)
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			l.Append(scalar(t, fd, 0))
			l.Append(scalar(t, fd, 1))
		case fd.Kind() == protoreflect.MessageKind:
			populate(t, m.Mutable(fd).Message(), entries, unknown)
		default:
			m.Set(fd, scalar(t, fd, 0))
		}
	}
	if unknown != nil {
		m.SetUnknown(unknown)
	}
}

func scalar(t *testing.T, fd protoreflect.FieldDescriptor, j int) protoreflect.Value {
	t.Helper()
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("%s-%d-ü☠", fd.Name(), j))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(append([]byte{0, 0xff, 0x80}, byte(j)))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(math.MinInt64 + int64(j))
	case protoreflect.Uint64Kind:
		return protoreflect.ValueOfUint64(math.MaxUint64 - uint64(j))
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32(math.MaxUint32 - uint32(j))
	}
	t.Fatalf("%s: populate knows no value of kind %v: teach it one", fd.FullName(), fd.Kind())
	return protoreflect.Value{}
}

// unknownFields are two fields no palm message has, as a newer peer may send.
func unknownFields() []byte {
	b := protowire.AppendTag(nil, 1000, protowire.VarintType)
	b = protowire.AppendVarint(b, 1<<40)
	b = protowire.AppendTag(b, 1001, protowire.BytesType)
	return protowire.AppendString(b, "from a newer peer")
}

// everyFieldSet checks that populate reached every field of m and of the
// messages inside it, so that a test built on it covers the whole schema.
func everyFieldSet(t *testing.T, m protoreflect.Message) {
	t.Helper()
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if !m.Has(fd) {
			t.Errorf("%s is not set", fd.FullName())
			continue
		}
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			everyFieldSet(t, m.Get(fd).List().Get(0).Message())
		case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
			everyFieldSet(t, m.Get(fd).Message())
		}
	}
}

// codecBytes encodes m with Codec and returns the bytes, with the buffers
// already back in the pool.
func codecBytes(t *testing.T, m proto.Message) []byte {
	t.Helper()
	data, err := Codec.Marshal(m)
	if err != nil {
		t.Fatalf("%T: %v", m, err)
	}
	defer data.Free()
	return data.Materialize()
}

// codecDecode decodes b with Codec into a new message of m's type, from a
// copy of b that is spoilt afterwards, as a buffer that goes back to the
// pool would be: the message must keep nothing of it. A message that shares
// its buffer (see TestCodecSharesBuffer) keeps it instead, and no one
// writes to it again.
func codecDecode(t *testing.T, b []byte, m proto.Message) proto.Message {
	t.Helper()
	in := slices.Clone(b)
	got := m.ProtoReflect().New().Interface()
	if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(in)}, got); err != nil {
		t.Fatalf("%T: %v", m, err)
	}
	if !isShared(got) || len(in) > maxShared {
		spoil(in)
	}
	return got
}

func spoil(b []byte) {
	for i := range b {
		b[i] = 0xa5
	}
}

// recordingPool is a buffer pool that records what is put back.
type recordingPool struct{ back []*[]byte }

func (p *recordingPool) Get(n int) *[]byte { b := make([]byte, n); return &b }
func (p *recordingPool) Put(b *[]byte)     { p.back = append(p.back, b) }

// The messages that carry PalmMessages from hop to hop share the buffer
// they were decoded from, up to maxShared: it never goes back to the pool,
// and a payload's capacity ends with it, so that appending to one cannot
// write over the fields that follow it. Larger messages, and the others,
// are copied out and give their buffer back.
func TestCodecSharesBuffer(t *testing.T) {
	decode := func(m, into proto.Message) (*recordingPool, proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		pool := &recordingPool{}
		data := mem.BufferSlice{mem.NewBuffer(&b, pool)}
		if err := Codec.Unmarshal(data, into); err != nil {
			t.Fatal(err)
		}
		data.Free()
		return pool, into
	}
	// Above gRPC's pooling threshold, so that the buffer is a pooled one.
	small := &palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{
		{Pipeline: "p", Client: "c", Function: "s.f", Payload: bytes.Repeat([]byte("1"), 1000)},
		{Pipeline: "p", Client: "c", Function: "s.g", Payload: bytes.Repeat([]byte("2"), 1000)},
	}}
	pool, got := decode(small, &palmv1.StreamRequest{})
	if len(pool.back) != 0 {
		t.Fatal("a small StreamRequest gave its buffer back: its strings and payloads point into it")
	}
	msgs := got.(*palmv1.StreamRequest).GetMessages()
	for _, m := range msgs {
		if p := m.GetPayload(); cap(p) != len(p) {
			t.Fatalf("payload %q has capacity %d past its length %d", p, cap(p), len(p))
		}
	}
	_ = append(msgs[0].Payload, "XXXXXXXXXXXXXXXXXXXXXXXX"...)
	if !proto.Equal(got, small) {
		t.Fatalf("appending to a payload changed the message: %v", got)
	}
	large := &palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{{Function: "s.f", Payload: make([]byte, maxShared)}}}
	pool, got = decode(large, &palmv1.StreamRequest{})
	if len(pool.back) != 1 {
		t.Fatal("a StreamRequest over maxShared kept its buffer")
	}
	spoil(*pool.back[0])
	if !proto.Equal(got, large) {
		t.Fatal("a StreamRequest over maxShared kept a part of the buffer it gave back")
	}
	set := &palmv1.SetRequest{Key: "k", Value: bytes.Repeat([]byte("v"), 2000)}
	pool, got = decode(set, &palmv1.SetRequest{})
	if len(pool.back) != 1 {
		t.Fatal("a SetRequest kept its buffer; a store keeps its value, which must not hold the buffer")
	}
	spoil(*pool.back[0])
	if !proto.Equal(got, set) {
		t.Fatal("a SetRequest kept a part of the buffer it gave back")
	}
}

// TestCodecMatchesProto checks that for every palm message type, with every
// field set, with no field set, with empty messages inside and with unknown
// fields, Codec encodes the very bytes proto.Marshal does, decodes
// proto.Marshal's bytes to an equal message, and round-trips.
func TestCodecMatchesProto(t *testing.T) {
	for _, mt := range palmMessageTypes(t) {
		name := string(mt.Descriptor().Name())
		full := mt.New()
		populate(t, full, 1, nil)
		everyFieldSet(t, full)
		withUnknown := mt.New()
		populate(t, withUnknown, 1, unknownFields())
		emptyInside := mt.New()
		fds := emptyInside.Descriptor().Fields()
		for i := range fds.Len() {
			if fd := fds.Get(i); fd.Kind() == protoreflect.MessageKind && !fd.IsMap() {
				if fd.IsList() {
					emptyInside.Mutable(fd).List().Append(emptyInside.Mutable(fd).List().NewElement())
				} else {
					emptyInside.Mutable(fd)
				}
			}
		}
		for _, tc := range []struct {
			name string
			m    proto.Message
		}{
			{"every field", full.Interface()},
			{"empty", mt.New().Interface()},
			{"empty messages inside", emptyInside.Interface()},
			{"unknown fields", withUnknown.Interface()},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				want, err := proto.Marshal(tc.m)
				if err != nil {
					t.Fatal(err)
				}
				got := codecBytes(t, tc.m)
				if !bytes.Equal(got, want) {
					t.Fatalf("Codec encodes differently from proto.Marshal:\n codec %x\n proto %x", got, want)
				}
				if back := codecDecode(t, want, tc.m); !proto.Equal(back, tc.m) {
					t.Fatalf("Codec decodes proto.Marshal's bytes to\n %v\nwant\n %v", back, tc.m)
				}
				if u := tc.m.ProtoReflect().GetUnknown(); len(u) != 0 {
					if back := codecDecode(t, want, tc.m); !bytes.Equal(back.ProtoReflect().GetUnknown(), u) {
						t.Fatalf("unknown fields decoded as %x, want %x", back.ProtoReflect().GetUnknown(), u)
					}
				}
				if back := codecDecode(t, got, tc.m); !proto.Equal(back, tc.m) {
					t.Fatal("round trip through Codec changed the message")
				}
			})
		}
	}
}

// TestCodecMaps checks maps of several entries, whose order on the wire is
// unspecified for both encoders: each side decodes the other's bytes.
func TestCodecMaps(t *testing.T) {
	for _, mt := range palmMessageTypes(t) {
		m := mt.New()
		populate(t, m, 5, nil)
		b := codecBytes(t, m.Interface())
		if len(b) != proto.Size(m.Interface()) {
			t.Errorf("%s: %d bytes, proto.Size %d", mt.Descriptor().Name(), len(b), proto.Size(m.Interface()))
		}
		back := mt.New().Interface()
		if err := proto.Unmarshal(b, back); err != nil || !proto.Equal(back, m.Interface()) {
			t.Errorf("%s: proto.Unmarshal of Codec's bytes: %v, equal %v", mt.Descriptor().Name(), err, proto.Equal(back, m.Interface()))
		}
		want, _ := proto.Marshal(m.Interface())
		if back := codecDecode(t, want, m.Interface()); !proto.Equal(back, m.Interface()) {
			t.Errorf("%s: Codec decodes proto.Marshal's bytes to another message", mt.Descriptor().Name())
		}
	}
}

// TestCodecPooledSizes checks the encodings above gRPC's pooling threshold,
// up to the top tier of the pool and past it, and that a message decoded
// from a pooled buffer keeps nothing of it once it is reused.
func TestCodecPooledSizes(t *testing.T) {
	for _, size := range []int{0, 1, 1 << 10, 100 << 10, 1 << 20, 1<<maxPooled + 1} {
		results := make([]*palmv1.TaskResult, 3)
		for i := range results {
			results[i] = &palmv1.TaskResult{TaskId: uint64(i), Message: &palmv1.PalmMessage{
				Function: "s.f", Payload: bytes.Repeat([]byte{byte(i + 1)}, size/3), Sequence: uint64(i), TimeoutMs: 1500,
			}}
		}
		m := &palmv1.WorkRequest{Credit: 64, Results: results, Done: []*palmv1.TaskDone{{TaskId: 1}}}
		data, err := Codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := proto.Marshal(m)
		if !bytes.Equal(data.Materialize(), want) {
			t.Fatalf("payloads of %d bytes: encoding differs from proto.Marshal", size)
		}
		var back palmv1.WorkRequest
		if err := Codec.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		data.Free()
		for range 4 { // whatever buffer comes back from the pool, spoil it
			b := BufferPool.Get(len(want))
			for i := range *b {
				(*b)[i] = 0x5a
			}
			BufferPool.Put(b)
		}
		if !proto.Equal(m, &back) {
			t.Fatalf("payloads of %d bytes: the decoded message changed when its buffer was reused", size)
		}
	}
}

// TestCodecUnmarshalResets checks that decoding into a message that holds
// fields replaces them, as proto.Unmarshal does, rather than merging.
func TestCodecUnmarshalResets(t *testing.T) {
	m := &palmv1.StreamResponse{
		Messages:  []*palmv1.PalmMessage{{Function: "old.f", Payload: []byte("old")}},
		Completed: []uint64{1, 2},
	}
	in := &palmv1.StreamResponse{Messages: []*palmv1.PalmMessage{{Client: "c", Payload: []byte("new")}}}
	b, _ := proto.Marshal(in)
	if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, in) {
		t.Fatalf("decoded into a used message: %v, want %v", m, in)
	}
}

// TestCodecRefusesInvalidUTF8 checks every string of every palm message,
// nested ones and map keys included: protobuf-go refuses to encode or to
// decode a proto3 message with a string that is not UTF-8, and so does
// Codec, naming the field, although the generated methods do not check.
func TestCodecRefusesInvalidUTF8(t *testing.T) {
	checked := 0
	for _, mt := range palmMessageTypes(t) {
		for _, sp := range spoilers(mt.Descriptor(), 0) {
			m := mt.New()
			populate(t, m, 1, nil)
			sp.spoil(m)
			name := string(mt.Descriptor().Name()) + "." + sp.path
			if _, err := proto.Marshal(m.Interface()); err == nil {
				t.Fatalf("%s: proto.Marshal encodes it; the test does not test anything", name)
			}
			if _, err := Codec.Marshal(m.Interface()); err == nil || !strings.Contains(err.Error(), "UTF-8") || !strings.Contains(err.Error(), sp.field) {
				t.Errorf("%s: Codec.Marshal: %v; want an error naming %s and UTF-8", name, err, sp.field)
			}
			b, err := m.Interface().(vtMessage).(interface{ MarshalVT() ([]byte, error) }).MarshalVT()
			if err != nil {
				t.Fatal(err)
			}
			if err := proto.Unmarshal(b, mt.New().Interface()); err == nil {
				t.Fatalf("%s: proto.Unmarshal decodes it; the test does not test anything", name)
			}
			err = Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, mt.New().Interface())
			if err == nil || !strings.Contains(err.Error(), "UTF-8") || !strings.Contains(err.Error(), sp.field) {
				t.Errorf("%s: Codec.Unmarshal: %v; want an error naming %s and UTF-8", name, err, sp.field)
			}
			checked++
		}
	}
	if checked < 30 {
		t.Fatalf("only %d strings checked", checked)
	}
}

// A spoiler puts invalid UTF-8 into one string of a populated message.
type spoiler struct {
	path  string // from the top message, for the test's messages
	field string // the field's full name, which the error must name
	spoil func(protoreflect.Message)
}

func spoilers(md protoreflect.MessageDescriptor, depth int) []spoiler {
	if depth > 4 {
		return nil
	}
	const bad = "ok\xff\xfe"
	var sps []spoiler
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		path, field := string(fd.Name()), string(fd.FullName())
		switch {
		case fd.IsMap() && fd.MapKey().Kind() == protoreflect.StringKind:
			sps = append(sps, spoiler{path + "[key]", string(fd.Message().FullName()) + ".key", func(m protoreflect.Message) {
				mp := m.Mutable(fd).Map()
				var v protoreflect.Value
				mp.Range(func(_ protoreflect.MapKey, val protoreflect.Value) bool { v = val; return true })
				mp.Set(protoreflect.ValueOfString(bad).MapKey(), v)
			}})
		case fd.IsMap():
		case fd.Kind() == protoreflect.StringKind && fd.IsList():
			sps = append(sps, spoiler{path + "[1]", field, func(m protoreflect.Message) {
				m.Mutable(fd).List().Set(1, protoreflect.ValueOfString(bad))
			}})
		case fd.Kind() == protoreflect.StringKind:
			sps = append(sps, spoiler{path, field, func(m protoreflect.Message) { m.Set(fd, protoreflect.ValueOfString(bad)) }})
		case fd.Kind() == protoreflect.MessageKind:
			for _, sub := range spoilers(fd.Message(), depth+1) {
				sps = append(sps, spoiler{path + "." + sub.path, sub.field, func(m protoreflect.Message) {
					if fd.IsList() {
						sub.spoil(m.Mutable(fd).List().Get(1).Message())
					} else {
						sub.spoil(m.Mutable(fd).Message())
					}
				}})
			}
		}
	}
	return sps
}

// TestCodecOtherMessages checks that messages without the generated
// methods (health, reflection, well-known types) go through protobuf-go.
func TestCodecOtherMessages(t *testing.T) {
	m := wrapperspb.String("a value ☃")
	if _, ok := any(m).(vtMessage); ok {
		t.Fatal("StringValue has vtprotobuf methods; pick another message")
	}
	want, _ := proto.Marshal(m)
	if got := codecBytes(t, m); !bytes.Equal(got, want) {
		t.Fatalf("codec %x, proto %x", got, want)
	}
	if back := codecDecode(t, want, m); !proto.Equal(back, m) {
		t.Fatal("round trip changed the message")
	}
	if _, err := Codec.Marshal(wrapperspb.String("\xff")); err == nil {
		t.Error("a StringValue that is not UTF-8 was encoded")
	}
}

// TestCodecTruncated checks every prefix of full encodings: Codec decodes
// exactly those protobuf-go decodes (the ones cut between fields), to the
// same message, and refuses the others without panicking; validate alone
// refuses a malformed prefix rather than reading past its end.
func TestCodecTruncated(t *testing.T) {
	for _, mt := range palmMessageTypes(t) {
		m := mt.New()
		populate(t, m, 2, unknownFields())
		b, _ := proto.Marshal(m.Interface())
		for n := range len(b) {
			want := mt.New().Interface()
			wantErr := proto.Unmarshal(b[:n], want)
			got := mt.New().Interface()
			err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:n])}, got)
			switch {
			case (err == nil) != (wantErr == nil):
				t.Fatalf("%s cut at %d of %d bytes: Codec %v, proto %v", mt.Descriptor().Name(), n, len(b), err, wantErr)
			case err == nil && !proto.Equal(got, want):
				t.Fatalf("%s cut at %d of %d bytes: decoded differently", mt.Descriptor().Name(), n, len(b))
			case (validate(mt.Descriptor(), b[:n]) == nil) != (wantErr == nil):
				t.Fatalf("%s cut at %d of %d bytes: validate says %v, proto %v", mt.Descriptor().Name(), n, len(b), validate(mt.Descriptor(), b[:n]), wantErr)
			}
		}
	}
}
