package nodeproc

import "syscall"

// sysProcAttr makes the child die with SIGKILL when its parent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
