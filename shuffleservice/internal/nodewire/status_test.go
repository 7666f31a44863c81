package nodewire

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/shuffleservice/launcher"
	"shoal/shuffleservice/shuffle"
)

// TestStatusRoundTrip: every sentinel, wrapped as a handler wraps it,
// becomes its gRPC code on the server and matches errors.Is again on the
// client, with the server's message.
func TestStatusRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{shuffle.ErrInvalidArgument, codes.InvalidArgument},
		{shuffle.ErrUnknownApp, codes.NotFound},
		{shuffle.ErrNoMapOutput, codes.NotFound},
		{shuffle.ErrOutOfRange, codes.OutOfRange},
		{shuffle.ErrCorrupt, codes.DataLoss},
		{shuffle.ErrClosed, codes.Unavailable},
		{shuffle.ErrQueueFull, codes.ResourceExhausted},
		{shuffle.ErrNoCheckpointStore, codes.FailedPrecondition},
		{shuffle.ErrCheckpointStore, codes.FailedPrecondition},
		{blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{blockstore.ErrCorrupt, codes.DataLoss},
		{blockstore.ErrClosed, codes.Unavailable},
		{launcher.ErrInvalidArgument, codes.InvalidArgument},
		{launcher.ErrCannotRun, codes.FailedPrecondition},
		{launcher.ErrAppNotRegistered, codes.FailedPrecondition},
		{launcher.ErrUnknownBinary, codes.NotFound},
		{launcher.ErrUnknownWorker, codes.NotFound},
		{launcher.ErrTooLarge, codes.ResourceExhausted},
		{launcher.ErrClosed, codes.Unavailable},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
	} {
		wrapped := fmt.Errorf("%w: app x shuffle 1 map 2", tc.err)
		st := ToStatus(wrapped)
		if got := status.Code(st); got != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, got, tc.code)
		}
		back := FromStatus(st)
		if !errors.Is(back, tc.err) || back.Error() != wrapped.Error() || status.Code(back) != tc.code {
			t.Errorf("%v: back as %v (code %v), want errors.Is and the message %q", tc.err, back, status.Code(back), wrapped)
		}
		for _, other := range []error{shuffle.ErrCorrupt, blockstore.ErrCorrupt, shuffle.ErrUnknownApp} {
			if other != tc.err && errors.Is(back, other) {
				t.Errorf("%v: back as %v also matches %v", tc.err, back, other)
			}
		}
	}
	if err := ToStatus(errors.New("a bug")); status.Code(err) != codes.Internal {
		t.Errorf("an unknown error: code %v, want Internal", status.Code(err))
	}
	if ToStatus(nil) != nil || FromStatus(nil) != nil {
		t.Error("nil did not stay nil")
	}
}
