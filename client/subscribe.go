package client

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/reach"
)

// subscribe opens a subscription to the Client's id at the SubAddress and
// waits for its confirmation: once it returns, no reply published there for
// this Client is missed. It ends with ctx.
func (c *Client) subscribe(ctx context.Context) (palmv1.PublisherService_SubscribeClient, error) {
	stream, err := c.sub.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{c.id}, Subscriber: "client"})
	if err != nil {
		return nil, c.subError(err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, c.subError(err)
	}
	if !first.GetSubscribed() {
		return nil, status.Errorf(codes.Internal, "the component at %s (SubAddress) sent messages before confirming the subscription", c.subAddr)
	}
	return stream, nil
}

// await returns the first message of pipeline that the subscription
// delivers.
func (c *Client) await(stream palmv1.PublisherService_SubscribeClient, pipeline string) (*palmv1.PalmMessage, error) {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return nil, c.subError(err)
		}
		if mine := ofPipeline(resp, pipeline); len(mine) > 0 {
			return mine[0], nil
		}
	}
}

// subError names the SubAddress in a subscription's error, keeping its
// code.
func (c *Client) subError(err error) error {
	var re *reach.Error
	if errors.As(err, &re) {
		return err // it names the address already
	}
	if err == io.EOF {
		return status.Errorf(codes.Unavailable, "replies from %s (SubAddress): the component ended the subscription", c.subAddr)
	}
	st := status.Convert(err)
	code := st.Code()
	if code == codes.OK || code == codes.Unknown {
		code = codes.Unavailable // the stream ended without a status
	}
	return status.Errorf(code, "replies from %s (SubAddress): %s", c.subAddr, st.Message())
}

// ofPipeline returns the messages of resp that belong to pipeline: a
// subscription to the Client's id also carries its other calls' replies.
func ofPipeline(resp *palmv1.SubscribeResponse, pipeline string) []*palmv1.PalmMessage {
	var mine []*palmv1.PalmMessage
	for _, p := range resp.GetPublications() {
		if m := p.GetMessage(); m.GetPipeline() == pipeline {
			mine = append(mine, m)
		}
	}
	return mine
}
