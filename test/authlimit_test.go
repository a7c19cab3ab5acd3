package test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

const goodToken = "a-good-client-token-0123456789"

// A component with tokens and no TLS does not start: the tokens would
// travel in the clear. WithInsecureTokens accepts that, and then a token
// sent in plaintext, as grpcurl -plaintext -H or a Python worker sends it,
// is accepted.
func TestPlaintextTokensRefused(t *testing.T) {
	tokens := palm.WithTokens(map[string]palm.Permission{goodToken: palm.ClientRole})
	_, errMaster := master.New("server", quietLog(t), tokens)
	_, errServer := pipeline.NewServer("my_server", quietLog(t), tokens)
	for _, err := range []error{errMaster, errServer} {
		if err == nil {
			t.Fatal("a component with tokens and no TLS was built")
		}
		for _, want := range []string{"WithTokens without TLS", "in the clear", "other than Go's", "palm.WithTLS", "--cert and --key", "palm.WithInsecureTokens", "--insecure-tokens"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
	}

	addr := tlsServer(t, tokens, palm.WithInsecureTokens())
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(shortCtx(t, 5*time.Second), "authorization", "Bearer "+goodToken)
	if _, err := palmv1.NewCacheServiceClient(conn).Set(ctx, &palmv1.SetRequest{Key: "k", Value: []byte("v")}); err != nil {
		t.Errorf("a token in the clear, with WithInsecureTokens: %v", err)
	}
	if err := evalWith(t, addr, palm.WithToken(goodToken), palm.WithInsecureTokens()); err != nil {
		t.Errorf("a Go client sending its token in the clear with WithInsecureTokens: %v", err)
	}
	if _, err := client.New("my_server", addr, palm.WithToken(goodToken)); err == nil || !strings.Contains(err.Error(), "transport level security") {
		t.Errorf("a Go client with a token and no TLS nor WithInsecureTokens: got %v, want a refusal to send the token", err)
	}
}

// Tokens shorter than palm.MinTokenLength are refused by the server's
// option and by the dialers'.
func TestShortTokensRefused(t *testing.T) {
	short := strings.Repeat("x", palm.MinTokenLength-1)
	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "at least 16 bytes") || strings.Contains(err.Error(), short) {
			t.Errorf("%s with a token of %d bytes: got %v, want a refusal naming the rule and not the token", what, len(short), err)
		}
	}
	_, err := master.New("server", palm.WithTokens(map[string]palm.Permission{goodToken: palm.ClientRole, short: palm.WorkerRole}), palm.WithInsecureTokens())
	check("master.New", err)
	_, err = client.New("server", "127.0.0.1:1", palm.WithToken(short))
	check("client.New", err)
	_, err = worker.New("worker1", "127.0.0.1:1", palm.WithToken(short))
	check("worker.New", err)
	_, err = palm.DialOptions(palm.WithToken(short))
	check("palm.DialOptions", err)
	if _, err := palm.DialOptions(palm.WithToken(strings.Repeat("x", palm.MinTokenLength))); err != nil {
		t.Errorf("a token of exactly %d bytes: %v", palm.MinTokenLength, err)
	}
}

// dialFrom opens a plaintext connection to addr from the local IP from.
func dialFrom(t *testing.T, addr, from string) *grpc.ClientConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// get calls CacheService.Get on conn with token.
func get(ctx context.Context, conn *grpc.ClientConn, token string) error {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	_, err := palmv1.NewCacheServiceClient(conn).Get(ctx, &palmv1.GetRequest{Key: "k"})
	if status.Code(err) == codes.NotFound {
		return nil // authenticated; the key is not there
	}
	return err
}

// authTally counts the outcomes of wrong-token calls.
type authTally struct {
	mu            sync.Mutex
	unauth, other int
	throttled     int
	message       string // of a throttled call
}

func (c *authTally) add(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch status.Code(err) {
	case codes.Unauthenticated:
		c.unauth++
	case codes.ResourceExhausted:
		c.throttled++
		c.message = status.Convert(err).Message()
	default:
		c.other++
	}
}

// wrongTokens sends n calls with a wrong token over conns, 8 at a time.
func wrongTokens(t *testing.T, conns []*grpc.ClientConn, n int) *authTally {
	var (
		out  authTally
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out.add(get(ctx, conns[i%len(conns)], "a-wrong-token-0123456789"))
				cancel()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if out.other > 0 {
		t.Errorf("%d wrong-token calls failed neither Unauthenticated nor ResourceExhausted", out.other)
	}
	return &out
}

// sample returns the value of the first sample of the metric name in the
// exposition.
func sample(t *testing.T, exposition, name string) int {
	t.Helper()
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, name+"{") {
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
	}
	t.Fatalf("no sample %s in:\n%s", name, grep(exposition, "palm_"))
	return 0
}

// 10,000 wrong tokens on one connection, then from one address over many
// connections: past a small allowance they are refused unchecked with
// ResourceExhausted naming the address, counted and logged at Warn once
// per period, while the valid calls of other peers go on.
func TestFailedAuthenticationsSlowed(t *testing.T) {
	logs := &palmtest.Buffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	metricsLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, palm.WithLogger(logger), palm.WithMetricsListener(metricsLis), palm.WithInsecureTokens(),
		palm.WithTokens(map[string]palm.Permission{goodToken: palm.ClientRole}))
	start := time.Now()

	// Another peer calls with its valid token all along.
	stop, validDone := make(chan struct{}), make(chan struct{})
	var validCalls int
	other := dialFrom(t, addr, "127.0.0.2")
	go func() {
		defer close(validDone)
		for i := 0; i < 100_000; i++ { // bounded; ends when told
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := get(ctx, other, goodToken)
			cancel()
			if err != nil {
				t.Errorf("a valid call from another address: %v", err)
				return
			}
			validCalls++
		}
	}()

	// One connection: its own allowance (10, then one a second).
	one := wrongTokens(t, []*grpc.ClientConn{dialFrom(t, addr, "127.0.0.1")}, 10_000)
	elapsed := time.Since(start).Seconds()
	if one.unauth < 10 || float64(one.unauth) > 10+elapsed+1 {
		t.Errorf("one connection, %.1f s: %d wrong tokens checked (Unauthenticated); want 10 plus at most one a second", elapsed, one.unauth)
	}
	if !strings.Contains(one.message, "too many failed authentications on this connection from 127.0.0.1:") || !strings.Contains(one.message, "retry after") {
		t.Errorf("a throttled call's message: %q", one.message)
	}
	// The connection's neighbours on the same address are not refused.
	if err := get(shortCtx(t, 10*time.Second), dialFrom(t, addr, "127.0.0.1"), goodToken); err != nil {
		t.Errorf("a valid call on another connection from the same address: %v", err)
	}

	// Many connections from one address: the address's allowance (50,
	// then five a second), and then even a valid token from it waits.
	var conns []*grpc.ClientConn
	for range 100 {
		conns = append(conns, dialFrom(t, addr, "127.0.0.1"))
	}
	many := wrongTokens(t, conns, 10_000)
	elapsed = time.Since(start).Seconds()
	if float64(one.unauth+many.unauth) > 50+5*elapsed+1 {
		t.Errorf("one address, %.1f s: %d wrong tokens checked; want at most 50 plus five a second", elapsed, one.unauth+many.unauth)
	}
	if many.throttled < 9_000 || !strings.Contains(many.message, "too many failed authentications from 127.0.0.1; retry after") {
		t.Errorf("one address: %d of 10,000 throttled, the last saying %q", many.throttled, many.message)
	}
	err = get(shortCtx(t, 10*time.Second), dialFrom(t, addr, "127.0.0.1"), goodToken)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a valid token from the throttled address: got %v, want ResourceExhausted", err)
	}
	close(stop)
	<-validDone
	if validCalls == 0 {
		t.Error("the other peer made no valid call")
	}

	t.Logf("one connection: %d checked, %d throttled; one address: %d checked, %d throttled; %d valid calls from another address; %.1f s",
		one.unauth, one.throttled, many.unauth, many.throttled, validCalls, time.Since(start).Seconds())

	// Counted, exactly, and logged at Warn at most once per period.
	exp := scrape(t, metricsLis.Addr().String())
	if got, want := sample(t, exp, "palm_auth_failures_total"), one.unauth+many.unauth; got != want {
		t.Errorf("palm_auth_failures_total = %d, want %d", got, want)
	}
	if got, want := sample(t, exp, "palm_auth_throttled_total"), one.throttled+many.throttled+1; got != want {
		t.Errorf("palm_auth_throttled_total = %d, want %d", got, want)
	}
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "failed authentications") && strings.Contains(l, "address=127.0.0.1 ") {
			lines = append(lines, l)
		}
	}
	elapsed = time.Since(start).Seconds()
	if len(lines) == 0 || float64(len(lines)) > 2+elapsed/10 || !strings.Contains(lines[0], "[WARN]") {
		t.Errorf("%d log lines for the address in %.1f s; want 1 to %d at Warn:\n%s", len(lines), elapsed, 2+int(elapsed/10), strings.Join(lines, "\n"))
	}
	if strings.Contains(logs.String(), "address=127.0.0.2") {
		t.Error("the valid peer was logged as failing")
	}
}
