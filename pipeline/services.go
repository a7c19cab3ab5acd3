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
	kind string
}

func (n noWorkers) Work(palmv1.DispatchService_WorkServer) error {
	return status.Errorf(codes.Unimplemented, "%s is a %s and runs its functions itself; connect workers to a master or a hub", n.name, n.kind)
}
