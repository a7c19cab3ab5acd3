package test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/palmtest"
)

// grpcurlTimeout bounds one grpcurl call against the local server.
const grpcurlTimeout = time.Minute

var (
	grpcurlOnce sync.Once
	grpcurlPath string
	grpcurlErr  error
)

// grpcurlBinary builds grpcurl, at the version tools/go.mod pins, once per
// test run.
func grpcurlBinary(t *testing.T) string {
	t.Helper()
	grpcurlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "palm-grpcurl-")
		if err != nil {
			grpcurlErr = err
			return
		}
		grpcurlPath = filepath.Join(dir, "grpcurl")
		r := run(t, toolTimeout, repoRoot(t), goCommand(t), "build", "-modfile=tools/go.mod", "-o", grpcurlPath, "github.com/fullstorydev/grpcurl/cmd/grpcurl")
		if r.err != nil {
			grpcurlErr = fmt.Errorf("building grpcurl failed:\n%v", r)
		}
		t.Logf("building grpcurl took %v", r.took.Round(time.Millisecond))
	})
	if grpcurlErr != nil {
		t.Fatal(grpcurlErr)
	}
	return grpcurlPath
}

// TestGrpcurl talks to a standalone server over real TCP with grpcurl, as
// someone exploring palm without a palm client would: it relies only on
// server reflection and palm's JSON mapping.
func TestGrpcurl(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	grpcurl := grpcurlBinary(t)

	addr, _ := serveTCP(t)
	// call runs grpcurl against the server: with data as the request body
	// (none if empty), then the address, then rest (a verb such as list, or
	// a method).
	call := func(t *testing.T, data string, rest ...string) result {
		t.Helper()
		args := []string{"-plaintext", "-connect-timeout", "10"}
		if data != "" {
			args = append(args, "-d", data)
		}
		args = append(append(args, addr), rest...)
		r := run(t, grpcurlTimeout, root, grpcurl, args...)
		t.Logf("grpcurl %s took %v", strings.Join(args, " "), r.took.Round(time.Millisecond))
		return r
	}
	// ok is call for a command that must succeed; it returns its output.
	ok := func(t *testing.T, data string, rest ...string) string {
		t.Helper()
		r := call(t, data, rest...)
		if r.err != nil {
			t.Fatalf("grpcurl %s failed:\n%v", strings.Join(rest, " "), r)
		}
		return r.stdout
	}

	t.Run("list", func(t *testing.T) {
		out := ok(t, "", "list")
		t.Logf("services:\n%s", out)
		services := strings.Fields(out)
		var missing []string
		for _, want := range []string{
			"palm.v1.GatewayService",
			"palm.v1.CacheService",
			"palm.v1.PublisherService",
			"palm.v1.DispatchService",
			"grpc.health.v1.Health",
		} {
			if !slices.Contains(services, want) {
				missing = append(missing, want)
			}
		}
		if !slices.Contains(services, "grpc.reflection.v1.ServerReflection") && !slices.Contains(services, "grpc.reflection.v1alpha.ServerReflection") {
			missing = append(missing, "grpc.reflection.v1.ServerReflection")
		}
		if len(missing) > 0 {
			t.Errorf("the server does not offer %s; it lists:\n%s", strings.Join(missing, ", "), out)
		}
	})

	t.Run("describe", func(t *testing.T) {
		out := ok(t, "", "describe", "palm.v1.GatewayService")
		for _, want := range []string{"palm.v1.GatewayService is a service", "rpc Eval (", "rpc Stream (", "stream .palm.v1.StreamRequest"} {
			if !strings.Contains(out, want) {
				t.Errorf("describe palm.v1.GatewayService lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("eval", func(t *testing.T) {
		out := ok(t, `{"message":{"function":"my_server.foo","payload":"YSBtZXNzYWdl","client":"c1"}}`, "palm.v1.GatewayService/Eval")
		var resp struct {
			Messages []struct {
				Client   string `json:"client"`
				Function string `json:"function"`
				Payload  string `json:"payload"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("Eval printed something other than JSON: %v\n%s", err, out)
		}
		if len(resp.Messages) != 1 {
			t.Fatalf("Eval returned %d messages, want 1:\n%s", len(resp.Messages), out)
		}
		m := resp.Messages[0]
		payload, err := base64.StdEncoding.DecodeString(m.Payload)
		if err != nil {
			t.Fatalf("the reply's payload %q is not base64: %v", m.Payload, err)
		}
		if string(payload) != "you sent me a message" {
			t.Errorf("the reply's payload is %q, want %q", payload, "you sent me a message")
		}
		if m.Client != "c1" || m.Function != "my_server.foo" {
			t.Errorf("the reply's client and function are %q and %q, want c1 and my_server.foo", m.Client, m.Function)
		}
	})

	t.Run("cache", func(t *testing.T) {
		value := []byte("vålue\x00\xff with bytes")
		encoded := base64.StdEncoding.EncodeToString(value)
		ok(t, `{"key":"k","value":"`+encoded+`"}`, "palm.v1.CacheService/Set")

		out := ok(t, `{"key":"k"}`, "palm.v1.CacheService/Get")
		var got struct {
			Value string `json:"value"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("Get printed something other than JSON: %v\n%s", err, out)
		}
		if got.Value != encoded {
			t.Errorf("Get returned value %q, want %q (what Set stored)", got.Value, encoded)
		}

		r := call(t, `{"key":"no such key"}`, "palm.v1.CacheService/Get")
		if r.err == nil {
			t.Errorf("Get of a missing key succeeded; want NotFound:\n%v", r)
		}
		if !strings.Contains(r.stdout+r.stderr, "NotFound") {
			t.Errorf("Get of a missing key does not say NotFound:\n%v", r)
		}
	})

	t.Run("health", func(t *testing.T) {
		for _, service := range []string{"", "palm.v1.GatewayService", "palm.v1.CacheService"} {
			out := ok(t, `{"service":"`+service+`"}`, "grpc.health.v1.Health/Check")
			var got struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("Check printed something other than JSON: %v\n%s", err, out)
			}
			if got.Status != "SERVING" {
				t.Errorf("health of %q is %q, want SERVING", service, got.Status)
			}
		}
	})
}

// grpcurl reaches a TLS server with --cacert, and with --cert and --key
// when the server requires client certificates.
func TestGrpcurlTLS(t *testing.T) {
	t.Parallel()
	grpcurl := grpcurlBinary(t)
	ca := palmtest.NewCA(t, "palm")
	cert, key, _ := ca.Issue(t, "my_server")
	ccert, ckey, _ := ca.Issue(t, "operator")
	for _, tc := range []struct {
		name   string
		server palm.TLSFiles
		flags  []string
	}{
		{"tls", palm.TLSFiles{Cert: cert, Key: key}, []string{"-cacert", ca.File}},
		{"mtls", palm.TLSFiles{CACert: ca.File, Cert: cert, Key: key, ClientAuth: true}, []string{"-cacert", ca.File, "-cert", ccert, "-key", ckey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.server.Config()
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := serveTCP(t, palm.WithTLS(cfg))
			grpc := func(args ...string) result {
				args = append(append(append([]string{"-connect-timeout", "10"}, tc.flags...), args[:len(args)-1]...), addr, args[len(args)-1])
				return run(t, grpcurlTimeout, repoRoot(t), grpcurl, args...)
			}
			if r := grpc("list"); r.err != nil || !strings.Contains(r.stdout, "palm.v1.GatewayService") {
				t.Fatalf("list over TLS:\n%v", r)
			}
			r := grpc("-d", `{"message":{"function":"my_server.foo","payload":"YSBtZXNzYWdl"}}`, "palm.v1.GatewayService/Eval")
			if r.err != nil || !strings.Contains(r.stdout, base64.StdEncoding.EncodeToString([]byte("you sent me a message"))) {
				t.Fatalf("Eval over TLS:\n%v", r)
			}
			if tc.name == "mtls" {
				noCert := append([]string{"-connect-timeout", "5", "-cacert", ca.File}, addr, "list")
				if r := run(t, grpcurlTimeout, repoRoot(t), grpcurl, noCert...); r.err == nil {
					t.Fatalf("grpcurl without a client certificate was let in:\n%v", r)
				}
			}
			if r := run(t, grpcurlTimeout, repoRoot(t), grpcurl, "-plaintext", "-connect-timeout", "5", addr, "list"); r.err == nil {
				t.Fatalf("plaintext grpcurl was let in:\n%v", r)
			}
		})
	}
}
