package registry

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

type handler interface{ name() string }

type named string

func (n named) name() string { return string(n) }

func TestAddLookupNames(t *testing.T) {
	r := New[handler]("test")
	if r.Len() != 0 || len(r.Names()) != 0 {
		t.Fatalf("a new registry holds %v", r.Names())
	}
	if _, ok := r.Lookup("b"); ok {
		t.Fatal("Lookup in an empty registry found a handler")
	}
	r.Add("b", named("B"))
	r.Add("a", named("A"))
	if h, ok := r.Lookup("b"); !ok || h.name() != "B" {
		t.Fatalf("Lookup(b) = %v, %v; want B, true", h, ok)
	}
	if got := r.Names(); !slices.Equal(got, []string{"a", "b"}) || r.Len() != 2 {
		t.Fatalf("Names = %v, Len = %d; want [a b], 2", got, r.Len())
	}
}

func TestAddPanics(t *testing.T) {
	r := New[handler]("test")
	r.Add("taken", named("x"))
	for _, tc := range []struct {
		name, function string
		h              handler
		says           string
	}{
		{"empty name", "", named("x"), `test: invalid function name "": the function name is empty`},
		{"dotted name", "a.b", named("x"), "contains a dot"},
		{"spaced name", "a b", named("x"), "white space"},
		{"non-UTF-8 name", "\xff", named("x"), "UTF-8"},
		{"nil handler", "n", nil, `test: nil handler for function "n"`},
		{"taken name", "taken", named("y"), `test: function "taken" registered twice`},
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tc.says) {
					t.Errorf("%s: panic %v; want one saying %q", tc.name, r, tc.says)
				}
			}()
			r.Add(tc.function, tc.h)
		}()
	}
	if h, _ := r.Lookup("taken"); h.name() != "x" || r.Len() != 1 {
		t.Errorf("a refused Add changed the registry: %v", r.Names())
	}
}

// Registering while others look up: every reader sees a whole map.
func TestAddWhileLookingUp(t *testing.T) {
	r := New[handler]("test")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, n := range r.Names() {
					if _, ok := r.Lookup(n); !ok {
						t.Errorf("%s listed but not found", n)
						return
					}
				}
			}
		})
	}
	for i := range 200 {
		r.Add(fmt.Sprint("f", i), named("x"))
	}
	close(stop)
	wg.Wait()
	if r.Len() != 200 {
		t.Fatalf("Len = %d; want 200", r.Len())
	}
}
