package launcher

import (
	"fmt"
	"strings"
)

// The environment variables the node sets itself, which a StartWorkers
// request may not give.
const (
	EnvRole          = "SHOAL_ROLE"
	EnvApp           = "SHOAL_APP"
	EnvNode          = "SHOAL_NODE"
	EnvWorkerID      = "SHOAL_WORKER_ID"
	EnvClusterSecret = "SHOAL_CLUSTER_SECRET"
	// EnvTLSDir is the node's identity directory (ca.crt, tls.crt,
	// tls.key), whose certificate the workers present.
	EnvTLSDir = "SHOAL_TLS_DIR"
)

// Bounds of a StartWorkers request's environment and arguments.
const (
	maxEnvVars   = 256
	maxArgs      = 256
	maxEnvBytes  = 64 << 10 // env and args, each
	workerPath   = "/usr/local/bin:/usr/bin:/bin"
	envKeyPrefix = "SHOAL_"
)

func reservedEnv(key string) bool {
	switch key {
	case EnvRole, EnvApp, EnvNode, EnvWorkerID, EnvClusterSecret, EnvTLSDir:
		return true
	}
	return false
}

// s3EnvKeys are the S3 client's variables a driver may give its
// workers besides SHOAL_ ones: its endpoint, credentials and region
// (objstore.Options.Environ), with which they read s3:// inputs and write
// outputs.
func s3EnvKey(k string) bool {
	switch k {
	case "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION":
		return true
	}
	return false
}

// validEnvKey: SHOAL_ followed by upper-case letters, digits and '_', or
// one of the S3 client's variables.
func validEnvKey(k string) bool {
	if s3EnvKey(k) {
		return true
	}
	rest, ok := strings.CutPrefix(k, envKeyPrefix)
	if !ok || rest == "" {
		return false
	}
	for _, c := range []byte(rest) {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// CheckEnv checks a StartWorkers request's environment, KEY=VALUE
// entries, and arguments: keys start with SHOAL_ (upper case, digits,
// '_') or are the S3 client's (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION), none is one the node sets, none twice, no NUL byte, at most 256
// entries and 64 KiB of each. The error wraps ErrInvalidArgument; it
// names keys, never values.
func CheckEnv(env, args []string) error {
	if len(env) > maxEnvVars {
		return fmt.Errorf("%w: %d environment variables (at most %d)", ErrInvalidArgument, len(env), maxEnvVars)
	}
	if len(args) > maxArgs {
		return fmt.Errorf("%w: %d arguments (at most %d)", ErrInvalidArgument, len(args), maxArgs)
	}
	seen := make(map[string]bool, len(env))
	var size int
	for i, kv := range env {
		size += len(kv)
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return fmt.Errorf("%w: environment entry %d is not KEY=VALUE", ErrInvalidArgument, i)
		case !validEnvKey(k):
			return fmt.Errorf("%w: environment variable %q: the workers' variables are named SHOAL_ followed by upper-case letters, digits or '_', or are the S3 client's AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION", ErrInvalidArgument, k)
		case reservedEnv(k):
			return fmt.Errorf("%w: environment variable %s is set by the node itself (SHOAL_ROLE, SHOAL_APP, SHOAL_NODE, SHOAL_WORKER_ID, SHOAL_CLUSTER_SECRET, SHOAL_TLS_DIR)", ErrInvalidArgument, k)
		case seen[k]:
			return fmt.Errorf("%w: environment variable %s is given twice", ErrInvalidArgument, k)
		case strings.IndexByte(kv, 0) >= 0:
			return fmt.Errorf("%w: environment variable %s holds a NUL byte", ErrInvalidArgument, k)
		}
		seen[k] = true
	}
	if size > maxEnvBytes {
		return fmt.Errorf("%w: the environment holds %d bytes (at most %d)", ErrInvalidArgument, size, maxEnvBytes)
	}
	size = 0
	for i, a := range args {
		size += len(a)
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: argument %d holds a NUL byte", ErrInvalidArgument, i)
		}
	}
	if size > maxEnvBytes {
		return fmt.Errorf("%w: the arguments hold %d bytes (at most %d)", ErrInvalidArgument, size, maxEnvBytes)
	}
	return nil
}

// workerEnv is the whole environment of a worker: the request's, the
// node's own variables, and a PATH, HOME and TMPDIR of its own. Nothing
// is inherited from the node's environment.
func workerEnv(given []string, app, node, id, secret, tlsDir, home, tmp string) []string {
	env := make([]string, 0, len(given)+8)
	env = append(env, given...)
	env = append(env,
		EnvRole+"=worker",
		EnvApp+"="+app,
		EnvNode+"="+node,
		EnvWorkerID+"="+id,
	)
	if secret != "" {
		env = append(env, EnvClusterSecret+"="+secret)
	}
	if tlsDir != "" {
		env = append(env, EnvTLSDir+"="+tlsDir)
	}
	return append(env, "PATH="+workerPath, "HOME="+home, "TMPDIR="+tmp)
}
