package kv_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/kv/kvtest"
)

func TestMemoryContract(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store { return kv.NewMemory() })
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		key  string
		want string // "" for valid
	}{
		{"k", ""},
		{"日本語", ""},
		{strings.Repeat("x", kv.MaxKeyLen), ""},
		{"", "key is empty"},
		{strings.Repeat("x", 5000), "key is 5000 bytes; the limit is 4096 bytes"},
		{"a\xffb", `key "a\xffb" is not valid UTF-8`},
	}
	for _, tt := range tests {
		err := kv.ValidKey(tt.key)
		if tt.want == "" {
			if err != nil {
				t.Errorf("ValidKey(%.20q) = %v; want nil", tt.key, err)
			}
			continue
		}
		if !errors.Is(err, kv.ErrInvalidKey) || err.Error() != tt.want {
			t.Errorf("ValidKey(%.20q) = %v; want %q wrapping kv.ErrInvalidKey", tt.key, err, tt.want)
		}
	}
}

func TestNewKey(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		k := kv.NewKey()
		if err := kv.ValidKey(k); err != nil {
			t.Fatalf("NewKey() = %q: %v", k, err)
		}
		if len(k) < 26 || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Fatalf("NewKey() = %q; want at least 26 base32 characters", k)
		}
		if seen[k] {
			t.Fatalf("NewKey() returned %q twice", k)
		}
		seen[k] = true
	}
}

func TestMemoryNotFoundMessage(t *testing.T) {
	_, err := kv.NewMemory().Get(t.Context(), "abc")
	if got, want := err.Error(), `key "abc" not found`; got != want {
		t.Errorf("Get(abc) error = %q; want %q", got, want)
	}
}
