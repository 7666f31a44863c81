package compute

import "syscall"

// sysProcAttr makes a worker die with SIGKILL when the process that
// started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
