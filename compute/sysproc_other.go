//go:build !linux

package compute

import "syscall"

// sysProcAttr: without Linux's parent-death signal, a worker outlives a
// launcher that is killed, until it notices that its driver is gone.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
