package worker

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/gen/palm/v1/palmv1connect"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/route"
)

// HTTPHandler returns the path and the handler that serve w's functions
// as an HTTP worker (a server-less worker): palm.v1.FunctionService, over
// the Connect protocol (JSON or binary protobuf over HTTP/1.1 or HTTP/2),
// gRPC and gRPC-Web, for a component whose HTTPWorkers part calls it.
// Mount it on any mux, behind any web server or platform:
//
//	mux := http.NewServeMux()
//	mux.Handle(worker.HTTPHandler(w))
//	err := http.ListenAndServe("127.0.0.1:8888", mux)
//
// The functions are those registered with Handle, HandleFunc, HandleMux and
// HandleMuxFunc, with the worker's middleware; the worker need not Run.
// Each call runs one function for one message, within the message's
// timeout_ms when it has one. A function that fails (or panics, logged
// with its stack) fails the call with its gRPC code; a muxed function
// that fails after results returns them with a last result that carries
// the error.
func HTTPHandler(w *Worker) (string, http.Handler) {
	return palmv1connect.NewFunctionServiceHandler(httpWorker{w},
		connect.WithReadMaxBytes(w.cfg.MaxMessageSize+config.Slack),
		connect.WithSendMaxBytes(4*w.cfg.MaxMessageSize+config.Slack))
}

type httpWorker struct{ w *Worker }

func (h httpWorker) Call(ctx context.Context, req *connect.Request[palmv1.CallRequest]) (*connect.Response[palmv1.CallResponse], error) {
	m := req.Msg.GetMessage()
	if m == nil {
		return nil, connectError(status.Error(codes.InvalidArgument, "the request carries no message: send {\"message\": {...}}"))
	}
	step, err := route.Current(m)
	if err != nil {
		return nil, connectError(err)
	}
	e, ok := h.w.lookup(step.Function)
	if !ok {
		return nil, connectError(status.Errorf(codes.NotFound, "worker %q has no function %q; it serves %v", h.w.name, step.Function, h.w.functions()))
	}
	if ms := m.GetTimeoutMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(min(ms, 1<<40))*time.Millisecond)
		defer cancel()
	}
	results, err := h.run(ctx, e, m, step)
	if err != nil && len(results) == 0 {
		return nil, connectError(err)
	}
	if err != nil {
		failed := palm.ChangePayload(m, nil)
		failed.Error = route.ErrorOf(err, step)
		results = append(results, failed)
	}
	return connect.NewResponse(&palmv1.CallResponse{Results: results}), nil
}

// run calls the function, turning a panic into Internal.
func (h httpWorker) run(ctx context.Context, e entry, m *palmv1.PalmMessage, step route.Step) (results []*palmv1.PalmMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			h.w.logger.Error("user function panicked", "function", step.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "function panicked: %v", r)
		}
	}()
	seq := func(yield func([]byte, error) bool) { yield(e.one.Handle(ctx, m)) }
	if e.mux != nil {
		seq = e.mux.HandleMux(ctx, m)
	}
	for payload, ferr := range seq {
		if ferr != nil {
			h.w.logger.Error("user function gave an error", "function", step.String(), "error", fmt.Sprintf("%+v", ferr))
			return results, ferr
		}
		if payload != nil {
			results = append(results, palm.ChangePayload(m, payload))
		}
	}
	return results, nil
}

// connectError is err as a Connect error of the same code.
func connectError(err error) error {
	e := route.ErrorOf(err, route.Step{})
	return connect.NewError(connect.Code(route.Code(e)), fmt.Errorf("%s", e.GetMessage()))
}
