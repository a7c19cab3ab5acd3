package config

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// BenchmarkCodec measures one encode and one decode of the batches palm
// sends most, with protobuf-go (the codec before vtprotobuf) and with
// Codec (vtprotobuf, and validate on each side), and validate alone.
func BenchmarkCodec(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 100)
	message := func(i int) *palmv1.PalmMessage {
		return &palmv1.PalmMessage{
			Pipeline: "pipeline-0001", Client: "client-0001", Stage: 1, Function: "my_server.foo",
			Payload: payload, Sequence: uint64(1000 + i), TimeoutMs: 30000,
		}
	}
	work := &palmv1.WorkRequest{Credit: 64}
	stream := &palmv1.StreamRequest{}
	for i := range 64 {
		work.Results = append(work.Results, &palmv1.TaskResult{TaskId: uint64(i), Message: message(i)})
		work.Done = append(work.Done, &palmv1.TaskDone{TaskId: uint64(i)})
		stream.Messages = append(stream.Messages, message(i))
	}
	for _, tc := range []struct {
		name string
		m    vtMessage
	}{
		{"WorkRequest/64x100B", work},
		{"StreamRequest/64x100B", stream},
	} {
		for _, c := range []struct {
			name      string
			marshal   func(proto.Message) (mem.BufferSlice, error)
			unmarshal func(mem.BufferSlice, proto.Message) error
		}{
			{"proto", marshalProto, unmarshalProto},
			{"vtproto", func(m proto.Message) (mem.BufferSlice, error) { return Codec.Marshal(m) },
				func(d mem.BufferSlice, m proto.Message) error { return Codec.Unmarshal(d, m) }},
		} {
			b.Run(fmt.Sprintf("%s/%s", tc.name, c.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(proto.Size(tc.m)))
				for b.Loop() {
					data, err := c.marshal(tc.m)
					if err != nil {
						b.Fatal(err)
					}
					back := tc.m.ProtoReflect().New().Interface()
					if err := c.unmarshal(data, back); err != nil {
						b.Fatal(err)
					}
					data.Free()
				}
			})
		}
		b.Run(tc.name+"/validate", func(b *testing.B) {
			enc, _ := proto.Marshal(tc.m)
			d := tc.m.ProtoReflect().Descriptor()
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if err := validate(d, enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
