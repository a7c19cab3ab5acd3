package kv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxKeyLen is the longest key, in bytes, a Store accepts.
const MaxKeyLen = 4096

// Sentinel errors. Stores return them wrapped, with a message naming the key
// or the size at fault; match them with errors.Is.
var (
	// ErrNotFound means there is no value under the key.
	ErrNotFound = errors.New("kv: key not found")
	// ErrInvalidKey means a key is empty where a key is required, is not
	// valid UTF-8, or is longer than MaxKeyLen bytes.
	ErrInvalidKey = errors.New("kv: invalid key")
	// ErrTooLarge means a value is over the size limit of the Store or
	// service it was given to.
	ErrTooLarge = errors.New("kv: value too large")
	// ErrQuota means a Set would take a Store past one of its quotas: the
	// bytes or the number of keys it may hold (see MaxBytes and MaxKeys).
	// The Store is unchanged; deleting keys makes room.
	ErrQuota = errors.New("kv: cache quota exceeded")
)

// Store is a key-value store. Keys are UTF-8 strings of 1 to MaxKeyLen bytes
// (see ValidKey); values are byte slices, and an empty value is a value, not
// a missing key.
//
// Implementations must be safe for concurrent use by multiple goroutines,
// must not keep or alias the slices they are given or return, and must
// return ctx.Err() (possibly wrapped) when ctx is already done. Package
// kvtest holds the contract suite every implementation must pass.
type Store interface {
	// Get returns a copy of the value stored under key. A missing key
	// returns an error wrapping ErrNotFound; an empty stored value returns
	// a non-nil empty slice and a nil error. An invalid key returns an
	// error wrapping ErrInvalidKey.
	Get(ctx context.Context, key string) ([]byte, error)

	// Set stores a copy of value under key, replacing any value already
	// there; the caller may reuse value afterwards. A nil value is stored
	// as an empty value. An invalid key, including the empty key, returns
	// an error wrapping ErrInvalidKey; a value over the Store's limit, if
	// it has one, returns an error wrapping ErrTooLarge; a Set that would
	// take the Store past a quota, if it has one, returns an error wrapping
	// ErrQuota and leaves the Store as it was.
	Set(ctx context.Context, key string, value []byte) error

	// Delete removes key and reports whether it was there. Deleting a
	// missing key is not an error: it returns false, nil. An invalid key
	// returns an error wrapping ErrInvalidKey.
	Delete(ctx context.Context, key string) (deleted bool, err error)

	// Keys returns, sorted in byte order, at most limit keys that start
	// with prefix and sort strictly after startAfter (empty prefix: every
	// key; empty startAfter: from the beginning). more is true when further
	// keys match after the last one returned; pass that key as startAfter
	// to get the next page. limit <= 0 means no limit.
	Keys(ctx context.Context, prefix, startAfter string, limit int) (keys []string, more bool, err error)

	// Len returns the number of keys stored.
	Len(ctx context.Context) (int, error)
}

// ValidKey returns nil when key can be stored: 1 to MaxKeyLen bytes of
// valid UTF-8. Otherwise it returns an error wrapping ErrInvalidKey whose
// message says what is wrong.
func ValidKey(key string) error {
	switch {
	case key == "":
		return &kvError{sentinel: ErrInvalidKey, msg: "key is empty"}
	case len(key) > MaxKeyLen:
		return &kvError{sentinel: ErrInvalidKey,
			msg: fmt.Sprintf("key is %d bytes; the limit is %d bytes", len(key), MaxKeyLen)}
	case !utf8.ValidString(key):
		return &kvError{sentinel: ErrInvalidKey, msg: fmt.Sprintf("key %q is not valid UTF-8", key)}
	}
	return nil
}

// NewKey returns a new random key: upper-case base32 (A-Z, 2-7) carrying
// at least 128 random bits from crypto/rand (26 characters today), safe in
// URLs and file names. The CacheService uses it when Set is given an empty key. It is
// safe for concurrent use and never fails.
func NewKey() string {
	return rand.Text()
}

// notFound returns the error for a missing key.
func notFound(key string) error {
	return &kvError{sentinel: ErrNotFound, msg: fmt.Sprintf("key %q not found", key)}
}

// tooLarge returns the error for a value of n bytes over a limit of max.
func tooLarge(n, max int) error {
	return &kvError{sentinel: ErrTooLarge,
		msg: fmt.Sprintf("value is %d bytes; the limit is %d bytes", n, max)}
}

// kvError is a sentinel error with a message written for a person.
type kvError struct {
	sentinel error
	msg      string
}

func (e *kvError) Error() string { return e.msg }
func (e *kvError) Unwrap() error { return e.sentinel }
