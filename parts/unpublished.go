package parts

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// Unpublished answers palm.v1.PublisherService/Subscribe for a component
// that sends its replies back to their clients and publishes nothing to
// subscribers: every subscription is refused with Unimplemented, naming the
// component.
type Unpublished struct {
	palmv1.UnimplementedPublisherServiceServer
	// Component names the component in the refusal, e.g. "server my_server".
	Component string
}

// Subscribe refuses the subscription.
func (u Unpublished) Subscribe(*palmv1.SubscribeRequest, palmv1.PublisherService_SubscribeServer) error {
	return status.Errorf(codes.Unimplemented, "%s does not publish to subscribers yet: its replies go back to their clients on the gateway", u.Component)
}
