// Package nodeproc starts `shoal node` as a real child process, for tests,
// the benchmark and local mode. It waits for the node's one line on stdout,
//
//	shoal node listening on HOST:PORT pid PID
//
// and then hands back a Process with its address. Children are started
// with a parent-death signal (Linux), so they do not outlive the process
// that started them, even when it is killed.
//
// A Process is stopped either gracefully (Stop: SIGTERM, then SIGKILL if
// ctx expires) or abruptly (Kill: SIGKILL, as a machine failure would).
// Either way it is waited for, so it leaves no zombie.
//
// The child gets this process's environment plus SHOAL_ROLE=node
// (compute.EnvRole=compute.RoleNode), so that a user program serving as
// its own node service knows its role before it looks at its arguments:
// client.Init runs the node command in it.
package nodeproc
