package miniotest

import "syscall"

// sysProcAttr makes the server die with SIGKILL when its parent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
