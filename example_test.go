package palm_test

import (
	"log"
	"os"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

// A master that serves TLS and requires client certificates, and grants
// tokens by role; a worker that trusts the CA and sends its token. The
// files are read again when they change on disk.
func ExampleTLSFiles() {
	serverTLS, err := palm.TLSFiles{
		Cert: "server.pem", Key: "server-key.pem",
		CACert: "ca.pem", ClientAuth: true,
	}.Config()
	if err != nil {
		log.Fatal(err)
	}
	m, err := master.New("server",
		palm.WithTLS(serverTLS),
		palm.WithTokens(map[string]palm.Permission{
			os.Getenv("WORKER_TOKEN"): palm.WorkerRole,
			os.Getenv("CLIENT_TOKEN"): palm.ClientRole,
		}),
		palm.WithMetricsAddress("127.0.0.1:9100"))
	if err != nil {
		log.Fatal(err)
	}
	_ = m

	workerTLS, err := palm.TLSFiles{CACert: "ca.pem", Cert: "worker.pem", Key: "worker-key.pem"}.Config()
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New("worker1", "server.example:5559",
		palm.WithTLS(workerTLS),
		palm.WithToken(os.Getenv("WORKER_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	_ = w
}

// Components of a cluster whose machines are far apart: a window must hold
// a link's bandwidth times its round-trip time (100 MB/s over 40 ms is
// 4 MB), so the master and its workers take 8 MiB windows. Give every
// component of a cluster the same window.
func ExampleWithWindowSize() {
	far := palm.WithWindowSize(8 << 20)
	m, err := master.New("server", far)
	if err != nil {
		log.Fatal(err)
	}
	_ = m
	w, err := worker.New("worker1", "server.example:5559", far)
	if err != nil {
		log.Fatal(err)
	}
	_ = w
}
