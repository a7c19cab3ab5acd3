// Package registry is the table of a component's functions: function name
// to handler, registered at any time and read on every message without a
// lock.
package registry

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gopalm/palm/internal/names"
)

// Registry maps function names to handlers of type H. Reads load an
// immutable map through an atomic pointer; Add copies it, so that a
// registration while serving never makes a reader wait. It is safe for
// concurrent use; make one with New.
type Registry[H any] struct {
	owner    string     // who registers, in panics: "worker", "pipeline"
	mu       sync.Mutex // serializes Add
	handlers atomic.Pointer[map[string]H]
}

// New returns an empty Registry; owner names the package registering, in
// the panics of Add.
func New[H any](owner string) *Registry[H] {
	r := &Registry[H]{owner: owner}
	r.handlers.Store(&map[string]H{})
	return r
}

// Add registers h as the function named function. It panics, as net/http's
// ServeMux does for such programming errors, when the name fails
// names.Function, when h is a nil interface, or when the name is taken.
func (r *Registry[H]) Add(function string, h H) {
	if err := names.Function(function); err != nil {
		panic(fmt.Sprintf("%s: invalid function name %q: %v", r.owner, function, err))
	}
	if any(h) == nil {
		panic(fmt.Sprintf("%s: nil handler for function %q", r.owner, function))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.handlers.Load()
	if _, ok := old[function]; ok {
		panic(fmt.Sprintf("%s: function %q registered twice", r.owner, function))
	}
	m := maps.Clone(old)
	m[function] = h
	r.handlers.Store(&m)
}

// Lookup returns the handler of function, if one is registered.
func (r *Registry[H]) Lookup(function string) (H, bool) {
	h, ok := (*r.handlers.Load())[function]
	return h, ok
}

// Names returns the registered function names, sorted.
func (r *Registry[H]) Names() []string {
	return slices.Sorted(maps.Keys(*r.handlers.Load()))
}

// Len is the number of functions registered.
func (r *Registry[H]) Len() int { return len(*r.handlers.Load()) }
