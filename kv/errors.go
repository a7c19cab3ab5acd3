package kv

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ToStatus turns an error from a Store into a gRPC status error with the same
// message: ErrNotFound becomes NotFound, ErrInvalidKey InvalidArgument,
// ErrTooLarge ResourceExhausted, context.Canceled Canceled and
// context.DeadlineExceeded DeadlineExceeded. An error that already carries a
// gRPC status (such as one from FromStatus) keeps it; anything else becomes
// Internal. ToStatus(nil) is nil. FromStatus is its inverse.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	var code codes.Code
	switch {
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrInvalidKey):
		code = codes.InvalidArgument
	case errors.Is(err, ErrTooLarge):
		code = codes.ResourceExhausted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		if s, ok := status.FromError(err); ok {
			return s.Err()
		}
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

// FromStatus turns a gRPC status error from a remote CacheService back into
// an error that errors.Is matches against the sentinel ToStatus started from:
// NotFound matches ErrNotFound, InvalidArgument ErrInvalidKey,
// ResourceExhausted ErrTooLarge, Canceled context.Canceled and
// DeadlineExceeded context.DeadlineExceeded. The result's message is the
// server's message, and status.Code and status.FromError still report the
// original status. Errors with other codes, and errors that carry no
// status, are returned unchanged; FromStatus(nil) is nil.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	var sentinel error
	switch s.Code() {
	case codes.NotFound:
		sentinel = ErrNotFound
	case codes.InvalidArgument:
		sentinel = ErrInvalidKey
	case codes.ResourceExhausted:
		sentinel = ErrTooLarge
	case codes.Canceled:
		sentinel = context.Canceled
	case codes.DeadlineExceeded:
		sentinel = context.DeadlineExceeded
	default:
		return err
	}
	return &statusError{sentinel: sentinel, status: s}
}

// statusError is a gRPC status that unwraps to a kv or context sentinel.
type statusError struct {
	sentinel error
	status   *status.Status
}

func (e *statusError) Error() string              { return e.status.Message() }
func (e *statusError) Unwrap() error              { return e.sentinel }
func (e *statusError) GRPCStatus() *status.Status { return e.status }
