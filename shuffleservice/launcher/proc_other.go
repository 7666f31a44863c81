//go:build !linux

package launcher

import (
	"syscall"
)

// sysProcAttr: elsewhere than Linux, no parent-death signal.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// waitExited: the waiter reaps the process straight away.
func waitExited(pid int) bool { return false }

// killGroup signals the worker itself (os.Process.Signal is safe once
// the process is reaped).
func killGroup(p *proc, sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
}
