package pipeline

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// noWorkers answers palm.v1.DispatchService/Work on a standalone server,
// which runs its functions itself: workers connect to a master.
type noWorkers struct {
	palmv1.UnimplementedDispatchServiceServer
	name string
}

func (n noWorkers) Work(palmv1.DispatchService_WorkServer) error {
	return status.Errorf(codes.Unimplemented, "%s is a standalone server and runs its functions itself; connect workers to a master", n.name)
}

// noSubscriptions answers palm.v1.PublisherService/Subscribe until the
// server publishes to subscribers (pipelined servers).
type noSubscriptions struct {
	palmv1.UnimplementedPublisherServiceServer
	name string
}

func (n noSubscriptions) Subscribe(*palmv1.SubscribeRequest, palmv1.PublisherService_SubscribeServer) error {
	return status.Errorf(codes.Unimplemented, "server %s does not publish to subscribers yet: its replies go back to their clients on the gateway", n.name)
}
