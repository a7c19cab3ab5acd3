package master

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// noSubscriptions answers palm.v1.PublisherService/Subscribe until masters
// publish to subscribers (pipelined masters and hubs).
type noSubscriptions struct {
	palmv1.UnimplementedPublisherServiceServer
	name string
}

func (n noSubscriptions) Subscribe(*palmv1.SubscribeRequest, palmv1.PublisherService_SubscribeServer) error {
	return status.Errorf(codes.Unimplemented, "master %s does not publish to subscribers yet: its replies go back to their clients on the gateway", n.name)
}
