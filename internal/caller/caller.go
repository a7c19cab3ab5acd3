// Package caller carries who made a call, as the authentication interceptor
// found it, to the services that decide what the caller may see.
package caller

import "context"

// Permission bits, as palm.Permission defines them.
const (
	UseGateway uint8 = 1 << iota
	UseCache
	UseDispatch
	UseSubscribe
	UseProbes
	UseStream
)

// Caller is the authenticated caller of a call.
type Caller struct {
	// ID names the caller stably: "cert:" and the certificate's common name
	// (or first DNS name), or "token:" and a fingerprint of the token, which
	// does not reveal it.
	ID string
	// Perm is the union of the permissions granted to the caller.
	Perm uint8
}

type key struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, key{}, c)
}

// From returns the caller ctx carries; ok is false on a component that
// requires no authentication.
func From(ctx context.Context) (c Caller, ok bool) {
	c, ok = ctx.Value(key{}).(Caller)
	return c, ok
}
