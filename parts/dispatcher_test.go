package parts

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// A stream that never says hello is ended after the hello timeout.
func TestHelloTimeout(t *testing.T) {
	d := NewDispatcher(DispatcherConfig{Master: "server", HelloTimeout: 100 * time.Millisecond})
	close(d.ready) // as Run does; no task is needed here
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	palmv1.RegisterDispatchServiceServer(s, d)
	go s.Serve(l)
	defer s.Stop()
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := palmv1.NewDispatchServiceClient(cc).Work(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(status.Convert(err).Message(), "no hello within 100ms") {
		t.Fatalf("got %v, want DeadlineExceeded for the missing hello", err)
	}
}
