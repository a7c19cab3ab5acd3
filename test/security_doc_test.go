package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopalm/palm"
)

// The openssl commands of docs/security.md, pasted into a shell as a
// reader would, make files palm serves and dials with, and the client's
// common name is the identity palm.WithIdentities knows.
func TestSecurityDocCommands(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is missing; .ci/run installs it")
		}
		t.Skip("openssl is not installed")
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- test: openssl -->\n```sh\n")
	if !ok {
		t.Fatal("docs/security.md has no openssl block marked for this test")
	}
	script, _, _ := strings.Cut(rest, "```")
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the commands failed: %v\n%s", err, out)
	}
	file := func(name string) string { return filepath.Join(dir, name) }
	addr := tlsServer(t,
		tlsOption(t, palm.TLSFiles{Cert: file("server.pem"), Key: file("server-key.pem"), CACert: file("ca.pem"), ClientAuth: true}),
		palm.WithIdentities(map[string]palm.Permission{"frontend": palm.ClientRole}))
	if err := evalWith(t, addr, tlsOption(t, palm.TLSFiles{CACert: file("ca.pem"), Cert: file("client.pem"), Key: file("client-key.pem")})); err != nil {
		t.Fatalf("a client with the documented files: %v", err)
	}
	// The server's certificate is valid for localhost too.
	if err := evalWith(t, strings.Replace(addr, "127.0.0.1", "localhost", 1), tlsOption(t, palm.TLSFiles{CACert: file("ca.pem"), Cert: file("client.pem"), Key: file("client-key.pem")})); err != nil {
		t.Fatalf("dialling localhost: %v", err)
	}
}
