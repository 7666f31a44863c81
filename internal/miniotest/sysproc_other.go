//go:build !linux

package miniotest

import "syscall"

// sysProcAttr: without Linux's parent-death signal, a server outlives a
// parent that is killed; Stop still ends it.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
