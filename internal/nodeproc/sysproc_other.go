//go:build !linux

package nodeproc

import "syscall"

// sysProcAttr: without Linux's parent-death signal, a child outlives a
// parent that is killed; Stop and Kill still end it.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
