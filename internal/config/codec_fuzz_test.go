package config

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FuzzCodec decodes arbitrary bytes as one of palm's message types (the
// first byte picks which) with Codec and with protobuf-go, and checks that
// they agree: both refuse, or both decode to equal messages, unknown fields
// included (in one form: see canonicalUnknown), which then encode alike.
func FuzzCodec(f *testing.F) {
	t := &testing.T{}
	types := palmMessageTypes(t)
	for i, mt := range types {
		m := mt.New()
		populate(t, m, 2, unknownFields())
		b, err := proto.Marshal(m.Interface())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(i)}, b...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mt := types[int(data[0])%len(types)]
		b := data[1:]
		want := mt.New().Interface()
		wantErr := proto.Unmarshal(b, want)
		got := mt.New().Interface()
		err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
		switch {
		case err != nil && wantErr != nil:
			return
		case err != nil || wantErr != nil:
			t.Fatalf("%s from %x: Codec says %v, protobuf-go %v", mt.Descriptor().Name(), b, err, wantErr)
		}
		canonicalUnknown(t, got.ProtoReflect())
		canonicalUnknown(t, want.ProtoReflect())
		if !proto.Equal(got, want) {
			t.Fatalf("%s from %x: Codec decodes\n %v\nprotobuf-go\n %v", mt.Descriptor().Name(), b, got, want)
		}
		enc := codecBytes(t, got)
		back := mt.New().Interface()
		if err := proto.Unmarshal(enc, back); err != nil || !proto.Equal(back, want) {
			t.Fatalf("%s from %x: Codec's encoding decodes to %v (%v)", mt.Descriptor().Name(), b, back, err)
		}
		if !hasMap(mt.Descriptor()) {
			if pb, _ := proto.Marshal(got); string(pb) != string(enc) {
				t.Fatalf("%s from %x: Codec encodes %x, protobuf-go %x", mt.Descriptor().Name(), b, enc, pb)
			}
		}
	})
}

// canonicalUnknown rewrites the unknown fields of m and of every message
// inside it with tags and varints in their shortest form. Both decoders
// keep unknown fields, but protobuf-go rewrites a tag written longer than
// needed where the generated code keeps the bytes as they came: the same
// fields either way, so the fuzz test compares them in one form.
func canonicalUnknown(t *testing.T, m protoreflect.Message) {
	if u := m.GetUnknown(); len(u) > 0 {
		var out []byte
		for len(u) > 0 {
			num, typ, n := protowire.ConsumeTag(u)
			if n < 0 {
				t.Fatalf("unknown fields %x: %v", u, protowire.ParseError(n))
			}
			out = protowire.AppendTag(out, num, typ)
			u = u[n:]
			n = protowire.ConsumeFieldValue(num, typ, u)
			if n < 0 {
				t.Fatalf("unknown fields %x: %v", u, protowire.ParseError(n))
			}
			if typ == protowire.VarintType {
				v, _ := protowire.ConsumeVarint(u)
				out = protowire.AppendVarint(out, v)
			} else {
				out = append(out, u[:n]...)
			}
			u = u[n:]
		}
		m.SetUnknown(out)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
				canonicalUnknown(t, e.Message())
				return true
			})
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := range v.List().Len() {
				canonicalUnknown(t, v.List().Get(i).Message())
			}
		case !fd.IsMap() && !fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			canonicalUnknown(t, v.Message())
		}
		return true
	})
}

// hasMap says whether md has a map field, whose entries neither encoder
// orders.
func hasMap(md protoreflect.MessageDescriptor) bool {
	for i := range md.Fields().Len() {
		if md.Fields().Get(i).IsMap() {
			return true
		}
	}
	return false
}
