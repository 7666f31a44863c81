package nodewire

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/shuffleservice/launcher"
	"shoal/shuffleservice/shuffle"
)

// The one place where the node service's errors meet gRPC: ToStatus on
// the server, FromStatus on the client. Each sentinel, the shuffle's and
// the block store's, travels as a status code plus an ErrorInfo reason, so
// the client gets back an error that errors.Is matches without looking at
// message text.

const errorDomain = "shoal.shuffle"

// sentinels are the errors toStatus translates, with their codes and
// reasons; only ranged over.
//
//lint:table
var sentinels = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{shuffle.ErrInvalidArgument, codes.InvalidArgument, "INVALID_ARGUMENT"},
	{shuffle.ErrUnknownApp, codes.NotFound, "UNKNOWN_APP"},
	{shuffle.ErrNoMapOutput, codes.NotFound, "NO_MAP_OUTPUT"},
	{shuffle.ErrOutOfRange, codes.OutOfRange, "OUT_OF_RANGE"},
	{shuffle.ErrCorrupt, codes.DataLoss, "CORRUPT"},
	{shuffle.ErrClosed, codes.Unavailable, "CLOSED"},
	{shuffle.ErrUnauthenticated, codes.Unauthenticated, "UNAUTHENTICATED"},
	{shuffle.ErrPermissionDenied, codes.PermissionDenied, "PERMISSION_DENIED"},
	{shuffle.ErrQueueFull, codes.ResourceExhausted, "CHECKPOINT_QUEUE_FULL"},
	{shuffle.ErrNoCheckpointStore, codes.FailedPrecondition, "NO_CHECKPOINT_STORE"},
	{shuffle.ErrCheckpointStore, codes.FailedPrecondition, "CHECKPOINT_STORE_READ"},
	{blockstore.ErrInvalidArgument, codes.InvalidArgument, "BLOCK_INVALID_ARGUMENT"},
	{blockstore.ErrCorrupt, codes.DataLoss, "BLOCK_CORRUPT"},
	{blockstore.ErrClosed, codes.Unavailable, "BLOCK_CLOSED"},
	{launcher.ErrInvalidArgument, codes.InvalidArgument, "LAUNCH_INVALID_ARGUMENT"},
	{launcher.ErrCannotRun, codes.FailedPrecondition, "CANNOT_RUN_BINARY"},
	{launcher.ErrAppNotRegistered, codes.FailedPrecondition, "APP_NOT_REGISTERED"},
	{launcher.ErrUnknownBinary, codes.NotFound, "UNKNOWN_BINARY"},
	{launcher.ErrUnknownWorker, codes.NotFound, "UNKNOWN_WORKER"},
	{launcher.ErrTooLarge, codes.ResourceExhausted, "NO_ROOM"},
	{launcher.ErrClosed, codes.Unavailable, "LAUNCHER_CLOSED"},
}

// ToStatus translates a server-side error to a gRPC status error.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			st, derr := status.New(s.code, err.Error()).WithDetails(&errdetails.ErrorInfo{Reason: s.reason, Domain: errorDomain})
			if derr != nil {
				return status.Error(s.code, err.Error())
			}
			return st.Err()
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// remoteError is an error returned by a node service: its message is the
// server's, and it unwraps to the matching sentinel (if any) and to the
// gRPC status error (so status.Code still works).
type remoteError struct {
	sentinel error
	st       error
}

func (e *remoteError) Error() string   { return status.Convert(e.st).Message() }
func (e *remoteError) Unwrap() []error { return []error{e.sentinel, e.st} }
func (e *remoteError) GRPCStatus() *status.Status {
	return status.Convert(e.st)
}

// FromStatus translates an error returned by a gRPC call.
func FromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.Domain != errorDomain {
			continue
		}
		for _, s := range sentinels {
			if s.reason == info.Reason {
				return &remoteError{sentinel: s.err, st: err}
			}
		}
	}
	switch st.Code() {
	case codes.Canceled:
		return &remoteError{sentinel: context.Canceled, st: err}
	case codes.DeadlineExceeded:
		return &remoteError{sentinel: context.DeadlineExceeded, st: err}
	}
	return err
}
