package compute

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"shoal/internal/ident"
)

// The environment contract of worker processes. A worker is the driver's
// own binary (or the shoal binary) started with these variables set; any
// such binary calls WorkerFromEnv first thing in main and, when it reports
// a worker, runs RunWorker instead of its normal main.
const (
	// EnvRole is "worker" in a worker process and "node" in a node
	// service started by internal/nodeproc.
	EnvRole = "SHOAL_ROLE"
	// EnvDriver is the driver endpoint's address (host:port).
	EnvDriver = "SHOAL_DRIVER"
	// EnvNode is the address of the node service of the worker's machine.
	EnvNode = "SHOAL_NODE"
	// EnvApp is the application's ID.
	EnvApp = "SHOAL_APP"
	// EnvWorkerID is the worker's ID, unique within the application.
	EnvWorkerID = "SHOAL_WORKER_ID"
	// EnvSlots is how many tasks the worker runs at once (optional).
	EnvSlots = "SHOAL_SLOTS"
	// EnvHeartbeat is the worker's heartbeat interval, a Go duration such
	// as "1s" (optional).
	EnvHeartbeat = "SHOAL_HEARTBEAT_INTERVAL"
	// EnvDriverTimeout is how long the worker waits for any message from
	// its driver before it takes it for lost, a Go duration such as
	// "10s" (WorkerOptions.DriverTimeout; optional).
	EnvDriverTimeout = "SHOAL_DRIVER_TIMEOUT"
	// EnvClusterSecret is the cluster secret the worker presents to node
	// services (WorkerOptions.ClusterSecret; optional: a node on loopback
	// may require none).
	EnvClusterSecret = "SHOAL_CLUSTER_SECRET"
	// EnvAppToken is the application's token, which the worker presents
	// to its driver's endpoint (WorkerOptions.AppToken,
	// EndpointOptions.Token).
	EnvAppToken = "SHOAL_APP_TOKEN"
	// EnvTLSDir is the worker's identity directory (ca.crt, tls.crt,
	// tls.key): its node's (WorkerOptions.TLSDir). Set: every link is
	// mutual TLS.
	EnvTLSDir = "SHOAL_TLS_DIR"
	// EnvTLSServerName is the name every node's certificate carries,
	// checked instead of the host dialled (WorkerOptions.TLSServerName;
	// optional).
	EnvTLSServerName = "SHOAL_TLS_SERVER_NAME"
	// EnvDriverCert is the SHA-256 (hex) of the certificate the driver's
	// endpoint serves with, which the worker accepts and no other
	// (WorkerOptions.DriverCertSHA256).
	EnvDriverCert = "SHOAL_DRIVER_CERT_SHA256"
	// EnvServeShuffle is "1" when the worker serves its own map outputs
	// (WorkerOptions.ServeShuffle; optional).
	EnvServeShuffle = "SHOAL_SERVE_SHUFFLE"

	// RoleWorker is the value of EnvRole in a worker process.
	RoleWorker = "worker"
	// RoleNode is the value of EnvRole in a node service started by
	// internal/nodeproc (`BINARY node --listen ... --dir ...`): it lets a
	// user program serve as its own node service (client.Init).
	RoleNode = "node"
)

// WorkerFromEnv reports whether this process is a worker (SHOAL_ROLE is
// "worker") and, if so, its options as the environment gives them. A
// malformed variable is reported by the options' Validate (RunWorker calls
// it), not here, so that the worker fails with a clear error.
func WorkerFromEnv() (WorkerOptions, bool) {
	if os.Getenv(EnvRole) != RoleWorker {
		return WorkerOptions{}, false
	}
	o := WorkerOptions{
		DriverAddr: os.Getenv(EnvDriver),
		NodeAddr:   os.Getenv(EnvNode),
		App:        os.Getenv(EnvApp),
		WorkerID:   os.Getenv(EnvWorkerID),

		ClusterSecret:    os.Getenv(EnvClusterSecret),
		AppToken:         os.Getenv(EnvAppToken),
		TLSDir:           os.Getenv(EnvTLSDir),
		TLSServerName:    os.Getenv(EnvTLSServerName),
		DriverCertSHA256: os.Getenv(EnvDriverCert),
	}
	if s := os.Getenv(EnvSlots); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			o.envErrs = append(o.envErrs, fmt.Errorf("%s=%q is not a positive number", EnvSlots, s))
		}
		o.Slots = n
	}
	if s := os.Getenv(EnvHeartbeat); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			o.envErrs = append(o.envErrs, fmt.Errorf("%s=%q is not a positive duration", EnvHeartbeat, s))
		}
		o.HeartbeatInterval = d
	}
	if s := os.Getenv(EnvDriverTimeout); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			o.envErrs = append(o.envErrs, fmt.Errorf("%s=%q is not a positive duration", EnvDriverTimeout, s))
		}
		o.DriverTimeout = d
	}
	if s := os.Getenv(EnvServeShuffle); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("%s=%q is not 1 or 0", EnvServeShuffle, s))
		}
		o.ServeShuffle = b
	}
	return o, true
}

// Environ returns the environment variables that make a process started
// with them a worker with these options: what WorkerFromEnv reads.
func (o WorkerOptions) Environ() []string {
	env := []string{
		EnvRole + "=" + RoleWorker,
		EnvDriver + "=" + o.DriverAddr,
		EnvNode + "=" + o.NodeAddr,
		EnvApp + "=" + o.App,
		EnvWorkerID + "=" + o.WorkerID,
	}
	if o.Slots != 0 {
		env = append(env, EnvSlots+"="+strconv.Itoa(o.Slots))
	}
	if o.HeartbeatInterval != 0 {
		env = append(env, EnvHeartbeat+"="+o.HeartbeatInterval.String())
	}
	if o.DriverTimeout != 0 {
		env = append(env, EnvDriverTimeout+"="+o.DriverTimeout.String())
	}
	if o.ServeShuffle {
		env = append(env, EnvServeShuffle+"=1")
	}
	if o.ClusterSecret != "" {
		env = append(env, EnvClusterSecret+"="+o.ClusterSecret)
	}
	if o.AppToken != "" {
		env = append(env, EnvAppToken+"="+o.AppToken)
	}
	if o.TLSDir != "" {
		env = append(env, EnvTLSDir+"="+o.TLSDir)
	}
	if o.TLSServerName != "" {
		env = append(env, EnvTLSServerName+"="+o.TLSServerName)
	}
	if o.DriverCertSHA256 != "" {
		env = append(env, EnvDriverCert+"="+o.DriverCertSHA256)
	}
	return env
}

// withoutShoalEnv returns env without the variables of the worker
// contract, so that a child does not inherit a role by accident.
func withoutShoalEnv(env []string) []string {
	out := make([]string, 0, len(env))
outer:
	for _, kv := range env {
		for _, k := range []string{EnvRole, EnvDriver, EnvNode, EnvApp, EnvWorkerID, EnvSlots, EnvHeartbeat, EnvDriverTimeout, EnvServeShuffle, EnvClusterSecret, EnvAppToken, EnvTLSDir, EnvTLSServerName, EnvDriverCert} {
			if strings.HasPrefix(kv, k+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

// validateID checks an application or worker ID as the node service does
// (package ident).
func validateID(what, id string) error {
	return ident.Check(what+" ID", id)
}
