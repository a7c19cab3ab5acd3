package parts

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/drain"
	"github.com/gopalm/palm/internal/route"
)

// Defaults of HTTPGatewayConfig.
const (
	DefaultHTTPConcurrency   = 4096
	DefaultHTTPTimeout       = 30 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// StepsHeader names the header (and StepsQuery the query parameter) that
// gives a request the steps of a pipeline, separated by spaces or commas,
// instead of the one its path names.
const (
	StepsHeader = "Palm-Steps"
	StepsQuery  = "steps"
	// StatusHeader carries the gRPC code of a failed request, by name.
	StatusHeader = "Palm-Status"
	// TimeoutHeader gives a request's deadline, in milliseconds from its
	// arrival (at most the gateway's Timeout).
	TimeoutHeader = "Palm-Timeout"
)

// HTTPGatewayConfig configures an HTTPGateway.
type HTTPGatewayConfig struct {
	// Address is where to listen, such as "127.0.0.1:8888"; or Listener.
	Address  string
	Listener net.Listener
	// TLS serves HTTPS with it; nil means the component's TLS (plaintext,
	// with HTTP/2 as h2c, when the component has none).
	TLS *tls.Config
	// Known reports whether the component serves a function; nil accepts
	// every function (a master's are its workers').
	Known func(function string) bool
	// MaxConcurrent bounds the requests handled at once; past it a
	// request is answered 503 with Retry-After. 0 means
	// DefaultHTTPConcurrency.
	MaxConcurrent int
	// Timeout bounds every request; a Palm-Timeout header (milliseconds)
	// may make it shorter. 0 means DefaultHTTPTimeout.
	Timeout time.Duration
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound slow clients:
	// the wait for a request's header, for all of it, and for the next
	// request on a kept-alive connection. 0 means the defaults.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// Authorize checks a request before it is read; nil means the
	// component's tokens and identities.
	Authorize func(r *http.Request) error
	// Logger; nil means the component's.
	Logger hclog.Logger
}

// HTTPGateway is an inbound part that makes a component an HTTP service
// (the original's HTTP gateway): GET or POST /{function} calls the
// component's function (/{server}.{function} a step by its full name; the
// Palm-Steps header, or the steps query parameter, a pipeline of them) with
// the request's body as the payload, and answers with the reply: 200 and
// the reply as the body, 204 when the function sends nothing back, or the
// HTTP status of the failure with {"code", "message"} as JSON and the gRPC
// code in the Palm-Status header (see HTTPStatus). The request's context
// and deadline travel with the message.
//
// It serves HTTP/1.1 and HTTP/2 (over TLS, or h2c in plaintext), with the
// component's TLS and tokens, at most MaxConcurrent requests at once, and
// timeouts against slow clients; it drains with the component.
type HTTPGateway struct {
	cfg    HTTPGatewayConfig
	check  route.Check
	logger hclog.Logger
	gate   *drain.Gate
	slots  chan struct{}
	link   *Link
	ready  chan struct{}
	runCtx context.Context
}

// NewHTTPGateway returns an HTTPGateway; register it as an inbound part.
func NewHTTPGateway(cfg HTTPGatewayConfig) (*HTTPGateway, error) {
	if cfg.Address == "" && cfg.Listener == nil {
		return nil, errors.New("parts: an HTTP gateway needs an Address or a Listener")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultHTTPConcurrency
	}
	cfg.Timeout = orDefault(cfg.Timeout, DefaultHTTPTimeout)
	cfg.ReadHeaderTimeout = orDefault(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	return &HTTPGateway{
		cfg:    cfg,
		check:  route.Check{Known: cfg.Known},
		logger: orQuiet(cfg.Logger),
		gate:   drain.New(),
		slots:  make(chan struct{}, cfg.MaxConcurrent),
		ready:  make(chan struct{}),
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Prepare takes the component's name, limit, TLS, authorisation and
// logger where the gateway has none.
func (g *HTTPGateway) Prepare(env Env) error {
	g.check.Server, g.check.MaxPayload = env.Name, env.MaxMessageSize
	if g.cfg.TLS == nil {
		g.cfg.TLS = env.TLS
	}
	if g.cfg.Authorize == nil {
		g.cfg.Authorize = env.AuthorizeHTTP
	}
	g.logger = loggerOr(g.logger, env)
	return nil
}

// Describe notes where the gateway listens.
func (g *HTTPGateway) Describe(d *Description) {
	addr := g.cfg.Address
	if g.cfg.Listener != nil {
		addr = g.cfg.Listener.Addr().String()
	}
	d.Note("http", addr)
}

// Run serves HTTP until ctx ends.
func (g *HTTPGateway) Run(ctx context.Context, link *Link) error {
	lis := g.cfg.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", g.cfg.Address); err != nil {
			return fmt.Errorf("http gateway: %w", err)
		}
	}
	g.link, g.runCtx = link, ctx
	close(g.ready)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(g.cfg.TLS == nil)
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		ReadTimeout:       g.cfg.ReadTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		Protocols:         &protocols,
		ErrorLog:          g.logger.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	g.logger.Info("serving HTTP", "address", lis.Addr().String(), "tls", g.cfg.TLS != nil)
	served := make(chan error, 1)
	if g.cfg.TLS != nil {
		// ServeTLS offers HTTP/2 and HTTP/1.1 by ALPN, whatever the
		// component's config offers for gRPC.
		srv.TLSConfig = g.cfg.TLS.Clone()
		srv.TLSConfig.NextProtos = nil
		go func() { served <- srv.ServeTLS(lis, "", "") }()
	} else {
		go func() { served <- srv.Serve(lis) }()
	}
	select {
	case err := <-served:
		return fmt.Errorf("http gateway: %w", err)
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(stop); err != nil {
		srv.Close()
	}
	<-served
	return nil
}

// Drain stops the gateway taking requests (they are answered 503) and
// waits until those it took are answered, or ctx ends.
func (g *HTTPGateway) Drain(ctx context.Context) error { return g.gate.Drain(ctx) }

// ServeHTTP answers one request.
func (g *HTTPGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		httpError(w, http.StatusMethodNotAllowed, codes.InvalidArgument, "use GET or POST /{function}, with the payload as the body")
		return
	}
	if g.cfg.Authorize != nil {
		if err := g.cfg.Authorize(r); err != nil {
			httpFailure(w, err)
			return
		}
	}
	select {
	case <-g.ready:
	case <-r.Context().Done():
		return
	}
	if !g.gate.Enter() {
		httpFailure(w, errDraining)
		return
	}
	defer g.gate.Leave(1)
	select {
	case g.slots <- struct{}{}:
		defer func() { <-g.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, codes.Unavailable, fmt.Sprintf("the server handles %d requests at once and is busy; retry after a second", g.cfg.MaxConcurrent))
		return
	}
	m, err := g.message(w, r)
	if err != nil {
		httpFailure(w, err)
		return
	}
	replies, err := g.call(r, m)
	if err != nil {
		httpFailure(w, err)
		return
	}
	g.answer(w, replies)
}

// message reads the request into a message for the steps it names.
func (g *HTTPGateway) message(w http.ResponseWriter, r *http.Request) (*palmv1.PalmMessage, error) {
	steps := strings.Join(strings.FieldsFunc(r.Header.Get(StepsHeader)+" "+r.URL.Query().Get(StepsQuery), func(c rune) bool { return c == ' ' || c == ',' }), " ")
	if steps == "" {
		fn := strings.TrimPrefix(r.URL.Path, "/")
		if fn == "" {
			return nil, status.Errorf(codes.InvalidArgument, "name the function in the path: /{function} or /{server}.{function}, such as /%s.foo", g.check.Server)
		}
		if !strings.Contains(fn, ".") {
			fn = g.check.Server + "." + fn
		}
		steps = fn
	}
	body := io.Reader(http.NoBody)
	if r.Body != nil {
		limit := int64(g.check.MaxPayload)
		if limit <= 0 {
			limit = 1 << 62
		}
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	payload, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, status.Errorf(codes.ResourceExhausted, "the body is over %d bytes, the largest payload this server takes", tooLarge.Limit)
		}
		return nil, status.Errorf(codes.InvalidArgument, "reading the body: %v", err)
	}
	id := rand.Text()
	return &palmv1.PalmMessage{Pipeline: id, Client: "http-" + id, Function: steps, Payload: payload, Sequence: 1}, nil
}

// call sends m into the router and waits for its replies.
func (g *HTTPGateway) call(r *http.Request, m *palmv1.PalmMessage) ([]*palmv1.PalmMessage, error) {
	step, err := g.check.Admit(m)
	if err != nil {
		return nil, err
	}
	timeout := g.cfg.Timeout
	if h := r.Header.Get(TimeoutHeader); h != "" {
		ms, err := strconv.ParseUint(h, 10, 32)
		if err != nil || ms == 0 {
			return nil, status.Errorf(codes.InvalidArgument, "the %s header is %q; give the milliseconds the request may take, such as 500", TimeoutHeader, h)
		}
		timeout = min(timeout, time.Duration(ms)*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	return evalCall(ctx, g.runCtx, g.link, Envelope{Msg: m, Sequence: m.GetSequence(), Step: step, Deadline: deadline}, max(g.check.MaxPayload, 1<<20))
}

// answer writes the reply: the first reply's payload, 204 for none.
func (g *HTTPGateway) answer(w http.ResponseWriter, replies []*palmv1.PalmMessage) {
	if len(replies) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if len(replies) > 1 {
		w.Header().Set("Palm-Replies", fmt.Sprint(len(replies)))
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(replies[0].GetPayload()); err != nil {
		g.logger.Debug("the reply was not written: the client went", "error", err)
	}
}

// HTTPStatus is the HTTP status of a failure with gRPC code c.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.ResourceExhausted:
		return http.StatusRequestEntityTooLarge
	case codes.Unavailable, codes.Aborted:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Canceled:
		return 499 // the client closed the request
	}
	return http.StatusInternalServerError
}

func httpFailure(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	if st.Code() == codes.Unavailable {
		w.Header().Set("Retry-After", "1")
	}
	httpError(w, HTTPStatus(st.Code()), st.Code(), st.Message())
}

func httpError(w http.ResponseWriter, httpStatus int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(StatusHeader, code.String())
	w.WriteHeader(httpStatus)
	json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code.String(), msg})
}
