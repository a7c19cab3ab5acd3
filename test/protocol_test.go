package test

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
)

// TestGeneratedCodeIsReproducible regenerates the Go code from proto/ with
// the pinned buf and plugins into a temporary directory and checks that it
// is gen/ byte for byte, with no file missing or extra; then it checks that
// buf lint has nothing to say.
func TestGeneratedCodeIsReproducible(t *testing.T) {
	t.Parallel()
	gocmd := goCommand(t)
	root := repoRoot(t)
	buf := []string{"tool", "-modfile=tools/buf/go.mod", "buf"}

	out := t.TempDir()
	r := run(t, toolTimeout, root, gocmd, append(buf, "generate", "--output", out)...)
	if r.err != nil {
		t.Fatalf("buf generate failed:\n%v", r)
	}
	t.Logf("buf generate took %v", r.took.Round(time.Millisecond))

	// buf.gen.yaml writes under gen/, which --output puts under out.
	want := readTree(t, filepath.Join(root, "gen"))
	got := readTree(t, filepath.Join(out, "gen"))
	if len(want) == 0 {
		t.Fatal("gen/ holds no files")
	}
	for _, name := range sortedKeys(want) {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("gen/%s is not generated from proto/: delete it, or restore the .proto it came from", name)
		case !bytes.Equal(g, want[name]):
			t.Errorf("gen/%s differs from what buf generate makes of proto/ (%s): run buf generate and commit the result", name, firstDifference(want[name], g))
		}
	}
	for _, name := range sortedKeys(got) {
		if _, ok := want[name]; !ok {
			t.Errorf("buf generate makes gen/%s, which is not in gen/: run buf generate and commit the result", name)
		}
	}

	r = run(t, toolTimeout, root, gocmd, append(buf, "lint")...)
	if r.err != nil || r.stdout != "" || r.stderr != "" {
		t.Errorf("buf lint must pass with no output:\n%v", r)
	}
	t.Logf("buf lint took %v", r.took.Round(time.Millisecond))
}

// readTree returns the contents of every regular file under dir, by path
// relative to dir with forward slashes.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s: not a regular file", path)
			return nil
		}
		b, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// firstDifference names the first line where got departs from want.
func firstDifference(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range min(len(wl), len(gl)) {
		if wl[i] != gl[i] {
			return fmt.Sprintf("line %d: have %q, generated %q", i+1, wl[i], gl[i])
		}
	}
	return fmt.Sprintf("have %d lines, generated %d", len(wl), len(gl))
}

// originalMessage is a PALM message of the original framework's schema:
//
//	message PalmMessage {
//	  string pipeline = 1;
//	  string client   = 2;
//	  int64  stage    = 3;
//	  string function = 4;
//	  string cache    = 5;
//	  bytes  payload  = 6;
//	}
type originalMessage struct {
	pipeline, client string
	stage            int64
	function, cache  string
	payload          []byte
}

// encodeOriginal encodes m as a proto3 encoder of the original schema does:
// fields in number order, fields holding their zero value left out.
func encodeOriginal(m originalMessage) []byte {
	var b []byte
	str := func(num protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	str(1, m.pipeline)
	str(2, m.client)
	if m.stage != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.stage)) // int64: two's complement, ten bytes when negative
	}
	str(4, m.function)
	str(5, m.cache)
	if len(m.payload) > 0 {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, m.payload)
	}
	return b
}

// unknownField is a field that a decoder of the original schema skipped.
type unknownField struct {
	num   protowire.Number
	typ   protowire.Type
	value []byte // the field's value, without its tag
}

// decodeOriginal decodes b as a decoder that knows only the original schema
// does: it takes fields 1 to 6 and skips any other field, which must still
// be well-formed. The last value of a repeated field wins.
func decodeOriginal(t *testing.T, b []byte) (originalMessage, []unknownField) {
	t.Helper()
	var m originalMessage
	var unknown []unknownField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("malformed tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		want, known := map[protowire.Number]protowire.Type{
			1: protowire.BytesType, 2: protowire.BytesType, 3: protowire.VarintType,
			4: protowire.BytesType, 5: protowire.BytesType, 6: protowire.BytesType,
		}[num]
		if !known {
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				t.Fatalf("unknown field %d (wire type %d) is malformed: %v", num, typ, protowire.ParseError(n))
			}
			unknown = append(unknown, unknownField{num, typ, b[:n]})
			b = b[n:]
			continue
		}
		if typ != want {
			t.Fatalf("field %d has wire type %d; the original schema has %d", num, typ, want)
		}
		if typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				t.Fatalf("field %d: %v", num, protowire.ParseError(n))
			}
			m.stage = int64(v)
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case 1:
			m.pipeline = string(v)
		case 2:
			m.client = string(v)
		case 4:
			m.function = string(v)
		case 5:
			m.cache = string(v)
		case 6:
			m.payload = slices.Clone(v)
		}
	}
	return m, unknown
}

var originalMessages = []struct {
	name string
	m    originalMessage
}{
	{"all fields, negative stage", originalMessage{
		pipeline: "pipeline-ü-1",
		client:   "клиент/7",
		stage:    -1,
		function: "первый.parse 第二.store",
		cache:    "naïve ☃ cache",
		payload:  []byte{0x00, 0xff, 0xfe, 0x80, '\n', 0xc3, 0x28, 0x00},
	}},
	{"smallest stage", originalMessage{client: "c", stage: math.MinInt64, function: "s.f", payload: []byte{0}}},
	{"largest stage", originalMessage{pipeline: "p", stage: math.MaxInt64, function: "a.b c.d"}},
	{"first step", originalMessage{pipeline: "p", client: "c", function: "my_server.foo", payload: []byte("a message")}},
	{"long payload", originalMessage{function: "s.f", payload: bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 40000)}},
	{"empty", originalMessage{}},
}

func fromOriginal(m originalMessage) *palmv1.PalmMessage {
	return &palmv1.PalmMessage{Pipeline: m.pipeline, Client: m.client, Stage: m.stage, Function: m.function, Cache: m.cache, Payload: m.payload}
}

func checkSameMessage(t *testing.T, got *palmv1.PalmMessage, want originalMessage) {
	t.Helper()
	if got.GetPipeline() != want.pipeline {
		t.Errorf("pipeline = %q, want %q", got.GetPipeline(), want.pipeline)
	}
	if got.GetClient() != want.client {
		t.Errorf("client = %q, want %q", got.GetClient(), want.client)
	}
	if got.GetStage() != want.stage {
		t.Errorf("stage = %d, want %d", got.GetStage(), want.stage)
	}
	if got.GetFunction() != want.function {
		t.Errorf("function = %q, want %q", got.GetFunction(), want.function)
	}
	if got.GetCache() != want.cache {
		t.Errorf("cache = %q, want %q", got.GetCache(), want.cache)
	}
	if !bytes.Equal(got.GetPayload(), want.payload) {
		t.Errorf("payload = %x, want %x", got.GetPayload(), want.payload)
	}
}

// TestPalmMessageWireCompatible checks that palm's PalmMessage and the
// original framework's are the same on the wire: palm decodes the original's
// bytes and encodes fields 1 to 6 to the very bytes the original does, and
// the fields palm added are ones the original skips cleanly.
func TestPalmMessageWireCompatible(t *testing.T) {
	t.Parallel()
	t.Run("original to palm", testOriginalToPalm)
	t.Run("palm fields skipped", testPalmFieldsSkipped)
}

// testOriginalToPalm checks that palm decodes the original's bytes and
// encodes the same message to the same bytes.
func testOriginalToPalm(t *testing.T) {
	for _, tc := range originalMessages {
		t.Run(tc.name, func(t *testing.T) {
			wire := encodeOriginal(tc.m)

			// Original bytes, palm decoder.
			var got palmv1.PalmMessage
			if err := proto.Unmarshal(wire, &got); err != nil {
				t.Fatalf("palm cannot decode the original's bytes: %v", err)
			}
			checkSameMessage(t, &got, tc.m)
			if got.GetError() != nil || got.GetSequence() != 0 {
				t.Errorf("palm-only fields set from the original's bytes: error=%v sequence=%d", got.GetError(), got.GetSequence())
			}
			if u := got.ProtoReflect().GetUnknown(); len(u) != 0 {
				t.Errorf("palm treats part of the original's bytes as unknown fields: %x", u)
			}

			// Palm encoder, same bytes as the original's.
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fromOriginal(tc.m))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, wire) {
				t.Errorf("palm encodes fields 1-6 differently from the original:\n palm     %x\n original %x", b, wire)
			}

			// palm's gRPC codec, which puts the bytes on the wire, does the
			// same both ways.
			var cgot palmv1.PalmMessage
			if err := config.Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, &cgot); err != nil {
				t.Fatalf("palm's codec cannot decode the original's bytes: %v", err)
			}
			checkSameMessage(t, &cgot, tc.m)
			data, err := config.Codec.Marshal(fromOriginal(tc.m))
			if err != nil {
				t.Fatal(err)
			}
			if cb := data.Materialize(); !bytes.Equal(cb, wire) {
				t.Errorf("palm's codec encodes fields 1-6 differently from the original:\n palm     %x\n original %x", cb, wire)
			}
			data.Free()

			// Decoders must take fields in any order; so must palm's.
			reversed := reverseFields(t, wire)
			var rgot palmv1.PalmMessage
			if err := proto.Unmarshal(reversed, &rgot); err != nil {
				t.Fatalf("palm cannot decode the original's fields in reverse order: %v", err)
			}
			checkSameMessage(t, &rgot, tc.m)
			rgot.Reset()
			if err := config.Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(reversed)}, &rgot); err != nil {
				t.Fatalf("palm's codec cannot decode the original's fields in reverse order: %v", err)
			}
			checkSameMessage(t, &rgot, tc.m)
		})
	}
}

// reverseFields returns b's fields in reverse order.
func reverseFields(t *testing.T, b []byte) []byte {
	t.Helper()
	var fields [][]byte
	for len(b) > 0 {
		_, _, n := protowire.ConsumeField(b)
		if n < 0 {
			t.Fatal(protowire.ParseError(n))
		}
		fields = append(fields, b[:n])
		b = b[n:]
	}
	slices.Reverse(fields)
	return bytes.Join(fields, nil)
}

// testPalmFieldsSkipped checks that the fields palm added (7 error, 8
// sequence) are well-formed fields that a decoder knowing only the
// original's fields 1 to 6 skips, leaving those intact.
func testPalmFieldsSkipped(t *testing.T) {
	for _, tc := range originalMessages {
		t.Run(tc.name, func(t *testing.T) {
			m := fromOriginal(tc.m)
			m.Error = &palmv1.Error{Code: 2, Message: "it went wrong: ошибка ☠", Function: "my_server.foo"}
			m.Sequence = math.MaxUint64 - 1
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			data, err := config.Codec.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if cb := data.Materialize(); !bytes.Equal(cb, b) {
				t.Errorf("palm's codec encodes palm's fields differently from protobuf-go:\n codec %x\n proto %x", cb, b)
			}
			data.Free()

			got, unknown := decodeOriginal(t, b)
			if !equalOriginal(got, tc.m) {
				t.Errorf("the original decodes fields 1-6 as %+v, want %+v", got, tc.m)
			}
			if len(unknown) != 2 || unknown[0].num != 7 || unknown[1].num != 8 {
				t.Fatalf("the original skips fields %v, want 7 then 8", fieldNumbers(unknown))
			}

			// Field 7: an embedded message holding palm.v1.Error.
			e := unknown[0]
			if e.typ != protowire.BytesType {
				t.Fatalf("field 7 has wire type %d, want %d (length-delimited)", e.typ, protowire.BytesType)
			}
			inner, n := protowire.ConsumeBytes(e.value)
			if n != len(e.value) {
				t.Fatalf("field 7 is not one length-delimited value")
			}
			var perr palmv1.Error
			if err := proto.Unmarshal(inner, &perr); err != nil {
				t.Fatalf("field 7 does not hold an Error: %v", err)
			}
			if !proto.Equal(&perr, m.Error) {
				t.Errorf("field 7 = %v, want %v", &perr, m.Error)
			}
			for rest := inner; len(rest) > 0; {
				_, _, n := protowire.ConsumeField(rest)
				if n < 0 {
					t.Fatalf("field 7 holds a malformed field: %v", protowire.ParseError(n))
				}
				rest = rest[n:]
			}

			// Field 8: a varint.
			s := unknown[1]
			if s.typ != protowire.VarintType {
				t.Fatalf("field 8 has wire type %d, want %d (varint)", s.typ, protowire.VarintType)
			}
			if v, n := protowire.ConsumeVarint(s.value); n != len(s.value) || v != m.Sequence {
				t.Errorf("field 8 = %d (%d of %d bytes), want %d", v, n, len(s.value), m.Sequence)
			}

			// With palm's fields taken out, the bytes are the original's.
			if stripped := b[:len(b)-fieldsLen(unknown)]; !bytes.Equal(stripped, encodeOriginal(tc.m)) {
				t.Errorf("palm's fields 1-6 are not the original's bytes:\n palm     %x\n original %x", stripped, encodeOriginal(tc.m))
			}
		})
	}
}

func equalOriginal(a, b originalMessage) bool {
	return a.pipeline == b.pipeline && a.client == b.client && a.stage == b.stage &&
		a.function == b.function && a.cache == b.cache && bytes.Equal(a.payload, b.payload)
}

func fieldNumbers(fields []unknownField) []protowire.Number {
	var nums []protowire.Number
	for _, f := range fields {
		nums = append(nums, f.num)
	}
	return nums
}

// fieldsLen is the encoded length of fields, tags included.
func fieldsLen(fields []unknownField) int {
	n := 0
	for _, f := range fields {
		n += protowire.SizeTag(f.num) + len(f.value)
	}
	return n
}
