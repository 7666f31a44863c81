package compute

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// maxMessageSize bounds one message on a worker's stream in either
// direction: a task's plan, or its result. Larger results belong in the
// node services as blocks.
const maxMessageSize = 64 << 20

// Transport keepalive. A worker pings its driver when the connection has
// been idle for keepaliveTime and gives up when no answer comes within
// keepaliveTimeout. A worker notices a driver that vanished without
// closing its sockets (a machine lost, a network partition) sooner, by
// the driver's heartbeats stopping (WorkerOptions.DriverTimeout); the
// keepalive is the transport's own check underneath, for a DriverTimeout
// set longer than it. The driver notices such a worker through missed
// heartbeats.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second
)

func serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveTime / 2,
			PermitWithoutStream: true,
		}),
	}
}

func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageSize),
			grpc.MaxCallSendMsgSize(maxMessageSize),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                keepaliveTime,
			Timeout:             keepaliveTimeout,
			PermitWithoutStream: true,
		}),
	}
}
