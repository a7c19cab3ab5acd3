package pipeline

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/parts"
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

// Run waits for ctx to end: noWorkers is a bypass part that only serves.
func (n noWorkers) Run(ctx context.Context, _ *parts.Link) error {
	<-ctx.Done()
	return nil
}

// RegisterServices serves noWorkers as the DispatchService, unreported by
// health.
func (n noWorkers) RegisterServices(r parts.Registrar) {
	r.Unreported(&palmv1.DispatchService_ServiceDesc, n)
}
