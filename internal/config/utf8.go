package config

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkUTF8 reports an error naming the field if a string field of the
// message encoded in b, or of any message nested in it, is not valid UTF-8:
// protobuf-go refuses such a proto3 message both ways, and so must the
// generated methods Codec uses instead. b is well-formed (it has just been
// encoded or decoded); fields the descriptor does not know are skipped, as
// protobuf-go keeps them unchecked.
//
// It walks the wire bytes with a table made once per message type
// (shapeOf), which is much cheaper than walking the decoded message by
// reflection: a payload is skipped by its length, unread.
func checkUTF8(d protoreflect.MessageDescriptor, b []byte) error {
	return shapeOf(d).check(b)
}

// A shape is what checkUTF8 needs of a message type: by field number, the
// fields holding strings and the fields holding messages to descend into.
type shape struct {
	name   protoreflect.FullName
	fields []fieldShape // by field number; a number past the end has nothing to check
}

type fieldShape struct {
	name protoreflect.Name
	utf8 bool   // a string: its bytes must be UTF-8
	sub  *shape // a message (or map entry) with strings somewhere inside
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

// buildShape makes d's shape; building holds the shapes under construction,
// so that a message type that contains itself ends.
func buildShape(d protoreflect.MessageDescriptor, building map[protoreflect.FullName]*shape) *shape {
	s := &shape{name: d.FullName()}
	building[d.FullName()] = s
	fds := d.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		var f fieldShape
		switch fd.Kind() {
		case protoreflect.StringKind:
			f.utf8 = true
		case protoreflect.MessageKind:
			sub, seen := building[fd.Message().FullName()]
			if !seen {
				sub = buildShape(fd.Message(), building)
				if sub.fields == nil {
					continue // no strings anywhere inside
				}
			}
			f.sub = sub
		default:
			continue
		}
		f.name = fd.Name()
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
	if s.fields == nil {
		return nil
	}
	for len(b) > 0 {
		var num uint64
		var typ protowire.Type
		if t := b[0]; t < 0x80 {
			num, typ, b = uint64(t>>3), protowire.Type(t&7), b[1:]
		} else {
			n, t, k := protowire.ConsumeTag(b)
			if k < 0 {
				return errMalformed
			}
			num, typ, b = uint64(n), t, b[k:]
		}
		switch typ {
		case protowire.VarintType:
			i := 0
			for i < len(b) && i < 10 && b[i] >= 0x80 {
				i++
			}
			if i == len(b) || i == 10 {
				return errMalformed
			}
			b = b[i+1:]
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
			if f.sub != nil {
				if err := f.sub.check(v); err != nil {
					return err
				}
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
