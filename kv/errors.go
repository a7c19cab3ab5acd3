package kv

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// QuotaReason is the reason of the google.rpc.ErrorInfo detail that ToStatus
// attaches to the ResourceExhausted status of an ErrQuota error, in the
// domain ErrorDomain. It tells a full cache apart from a value over the size
// limit, which has the same code; clients in other languages can read it
// too.
const (
	QuotaReason = "CACHE_QUOTA_EXCEEDED"
	ErrorDomain = "palm.v1.CacheService"
)

// ToStatus turns an error from a Store into a gRPC status error with the same
// message: ErrNotFound becomes NotFound, ErrInvalidKey InvalidArgument,
// ErrTooLarge ResourceExhausted, ErrQuota ResourceExhausted with an
// ErrorInfo detail of reason QuotaReason, context.Canceled Canceled and
// context.DeadlineExceeded DeadlineExceeded. An error that already carries a
// gRPC status (such as one from FromStatus) keeps it; anything else becomes
// Internal. ToStatus(nil) is nil. FromStatus is its inverse.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	var code codes.Code
	switch {
	case errors.Is(err, ErrQuota):
		s := status.New(codes.ResourceExhausted, err.Error())
		if d, derr := s.WithDetails(&errdetails.ErrorInfo{Reason: QuotaReason, Domain: ErrorDomain}); derr == nil {
			s = d
		}
		return s.Err()
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
// ResourceExhausted ErrQuota when it carries the ErrorInfo of reason
// QuotaReason and ErrTooLarge otherwise, Canceled context.Canceled and
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
		if isQuota(s) {
			sentinel = ErrQuota
		}
	case codes.Canceled:
		sentinel = context.Canceled
	case codes.DeadlineExceeded:
		sentinel = context.DeadlineExceeded
	default:
		return err
	}
	return &statusError{sentinel: sentinel, status: s}
}

// isQuota reports whether s carries the ErrorInfo ToStatus gives ErrQuota.
func isQuota(s *status.Status) bool {
	for _, d := range s.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == QuotaReason && info.GetDomain() == ErrorDomain {
			return true
		}
	}
	return false
}

// statusError is a gRPC status that unwraps to a kv or context sentinel.
type statusError struct {
	sentinel error
	status   *status.Status
}

func (e *statusError) Error() string              { return e.status.Message() }
func (e *statusError) Unwrap() error              { return e.sentinel }
func (e *statusError) GRPCStatus() *status.Status { return e.status }
