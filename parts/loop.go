package parts

import (
	"context"

	"github.com/hashicorp/go-hclog"
)

// orQuiet returns l, or quiet when l is nil: the default of every part's
// Logger.
func orQuiet(l hclog.Logger) hclog.Logger {
	if l == nil {
		return quiet
	}
	return l
}

// next waits for the next envelope in link's inbox; it reports false once
// ctx has ended, the end of an outbound part's loop.
func next(ctx context.Context, link *Link) (Envelope, bool) {
	select {
	case <-ctx.Done():
		return Envelope{}, false
	case e := <-link.Inbox():
		return e, true
	}
}
