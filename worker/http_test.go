package worker_test

import (
	"context"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/gen/palm/v1/palmv1connect"
	"github.com/gopalm/palm/worker"
)

// A worker's functions served over HTTP: a Connect client (JSON) and a
// plain JSON POST, as any language would send it, get their results; an
// unknown function, a failure, a panic and a muxed function's failure
// each come back as what they are.
func TestHTTPHandler(t *testing.T) {
	w, err := worker.New("web", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	w.HandleFunc("foo", func(_ context.Context, p []byte) ([]byte, error) { return append(p, " processed online"...), nil })
	w.HandleFunc("fails", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("it broke") })
	w.HandleFunc("panics", func(context.Context, []byte) ([]byte, error) { panic("oh no") })
	w.HandleMuxFunc("two", func(_ context.Context, p []byte) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) {
			_ = yield([]byte("one"), nil) && yield([]byte("two"), nil) && yield(nil, errors.New("no three"))
		}
	})
	mux := http.NewServeMux()
	mux.Handle(worker.HTTPHandler(w))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := palmv1connect.NewFunctionServiceClient(srv.Client(), srv.URL, connect.WithProtoJSON())
	call := func(fn string) (*palmv1.CallResponse, error) {
		resp, err := c.Call(context.Background(), connect.NewRequest(&palmv1.CallRequest{Message: &palmv1.PalmMessage{Client: "c", Function: fn, Payload: []byte("a message")}}))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	got, err := call("server.foo")
	if err != nil || len(got.GetResults()) != 1 || string(got.GetResults()[0].GetPayload()) != "a message processed online" || got.GetResults()[0].GetClient() != "c" {
		t.Errorf("foo: %v, %v", got, err)
	}
	for fn, want := range map[string]connect.Code{"server.nothing": connect.CodeNotFound, "server.fails": connect.CodeUnknown, "server.panics": connect.CodeInternal, "bad": connect.CodeInvalidArgument} {
		if _, err := call(fn); connect.CodeOf(err) != want {
			t.Errorf("%s: %v, want %v", fn, err, want)
		}
	}
	got, err = call("server.two")
	if r := got.GetResults(); err != nil || len(r) != 3 || string(r[1].GetPayload()) != "two" || r[2].GetError().GetMessage() != "no three" {
		t.Errorf("two: %v, %v", got, err)
	}

	// Any HTTP client: the Connect protocol's JSON, by hand.
	resp, err := http.Post(srv.URL+"/palm.v1.FunctionService/Call", "application/json",
		strings.NewReader(`{"message": {"function": "server.foo", "payload": "YSBtZXNzYWdl"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"payload":"YSBtZXNzYWdlIHByb2Nlc3NlZCBvbmxpbmU="`) {
		t.Errorf("plain JSON POST: %s %s", resp.Status, body)
	}
}
