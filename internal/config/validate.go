package config

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// validate checks the bytes b of a message of type d for what protobuf-go
// refuses and the generated methods Codec uses take:
//   - a string field, in the message or any message inside it, that is not
//     UTF-8 (protobuf-go refuses such a proto3 message both ways): the
//     error names the field;
//   - bytes that are not well-formed: an end-group that does not match its
//     start, a varint past 64 bits, a field number out of range:
//     errMalformed, on which the decoder lets protobuf-go decide (and word
//     the error).
//
// Fields the descriptor does not know are only checked for form, as
// protobuf-go keeps them. It walks the wire bytes with a table made once per
// message type (shapeOf), much cheaper than walking the decoded message by
// reflection: a payload is skipped by its length, unread.
func validate(d protoreflect.MessageDescriptor, b []byte) error {
	return shapeOf(d).check(b)
}

// A shape is what validate needs of a message type: by field number, the
// fields holding strings and the fields holding messages to descend into.
type shape struct {
	name   protoreflect.FullName
	fields []fieldShape // by field number; past the end, a field is unknown
}

type fieldShape struct {
	name    protoreflect.Name
	utf8    bool   // a string: its bytes must be UTF-8
	sub     *shape // a message or a map entry
	varints bool   // a list of varints, which may come packed
	fixed   int    // a list of 4- or 8-byte numbers, which may come packed
}

// shapes holds the shape of every message type met so far, by descriptor
// (a pointer, quicker to hash than its name). Only generated types, a fixed
// set, come here: the codec checks nothing else.
var shapes sync.Map // protoreflect.MessageDescriptor → *shape

func shapeOf(d protoreflect.MessageDescriptor) *shape {
	if s, ok := shapes.Load(d); ok {
		return s.(*shape)
	}
	s := buildShape(d, map[protoreflect.FullName]*shape{})
	actual, _ := shapes.LoadOrStore(d, s)
	return actual.(*shape)
}

// buildShape makes d's shape; building holds the shapes made or under
// construction, so that a message type that contains itself ends.
func buildShape(d protoreflect.MessageDescriptor, building map[protoreflect.FullName]*shape) *shape {
	s := &shape{name: d.FullName()}
	building[d.FullName()] = s
	fds := d.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		f := fieldShape{name: fd.Name()}
		switch fd.Kind() {
		case protoreflect.StringKind:
			f.utf8 = true
		case protoreflect.MessageKind:
			sub, ok := building[fd.Message().FullName()]
			if !ok {
				sub = buildShape(fd.Message(), building)
			}
			f.sub = sub
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			f.fixed = 4
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			f.fixed = 8
		case protoreflect.BytesKind, protoreflect.GroupKind:
			continue // a group comes delimited by tags, not a length
		default: // the varint kinds
			f.varints = true
		}
		if !fd.IsList() && f.sub == nil && !f.utf8 {
			continue // not length-delimited: nothing but its form to check
		}
		n := int(fd.Number())
		if n >= len(s.fields) {
			s.fields = append(s.fields, make([]fieldShape, n+1-len(s.fields))...)
		}
		s.fields[n] = f
	}
	return s
}

var errMalformed = errors.New("palm codec: malformed protobuf bytes")

// check walks b field by field. Tags and lengths of one byte, the common
// case, are read inline; anything else goes through protowire.
func (s *shape) check(b []byte) error {
	for len(b) > 0 {
		var num uint64
		var typ protowire.Type
		if t := b[0]; t < 0x80 {
			num, typ, b = uint64(t>>3), protowire.Type(t&7), b[1:]
			if num == 0 {
				return errMalformed
			}
		} else {
			n, t, k := protowire.ConsumeTag(b)
			if k < 0 || n > protowire.MaxValidNumber {
				return errMalformed
			}
			num, typ, b = uint64(n), t, b[k:]
		}
		switch typ {
		case protowire.VarintType:
			n := varintLen(b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
		case protowire.BytesType:
			var l uint64
			var k int
			if len(b) > 0 && b[0] < 0x80 {
				l, k = uint64(b[0]), 1
			} else if l, k = protowire.ConsumeVarint(b); k < 0 {
				return errMalformed
			}
			if l > uint64(len(b)-k) {
				return errMalformed
			}
			v := b[k : k+int(l)]
			b = b[k+int(l):]
			if num >= uint64(len(s.fields)) {
				continue
			}
			f := &s.fields[num]
			if f.utf8 && !utf8.Valid(v) {
				return fmt.Errorf("palm codec: string field %s.%s contains invalid UTF-8", s.name, f.name)
			}
			switch {
			case f.sub != nil:
				if err := f.sub.check(v); err != nil {
					return err
				}
			case f.varints:
				if !packedVarints(v) {
					return errMalformed
				}
			case f.fixed != 0 && len(v)%f.fixed != 0:
				return errMalformed
			}
		default:
			n := protowire.ConsumeFieldValue(protowire.Number(num), typ, b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
		}
	}
	return nil
}

// varintLen is the length of the varint b starts with, or -1 if it is cut
// short or holds more than 64 bits.
func varintLen(b []byte) int {
	i := 0
	for i < len(b) && i < 9 && b[i] >= 0x80 {
		i++
	}
	// The tenth byte of a varint holds the 64th bit alone.
	if i == len(b) || (i == 9 && b[i] > 1) {
		return -1
	}
	return i + 1
}

// packedVarints says whether b is a run of whole varints of 64 bits at most.
func packedVarints(b []byte) bool {
	for len(b) > 0 {
		n := varintLen(b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}
