package launcher

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr puts a worker in its own process group and has it killed
// (SIGKILL) when the node dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitExited returns once process pid has exited, without reaping it,
// and reports true; false if it could not wait (the caller then reaps
// the process without this step).
func waitExited(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err == nil
		}
	}
}

// killGroup sends sig to the process's group (the worker and what it
// started), and to the process itself, in case it left its group.
func killGroup(p *proc, sig syscall.Signal) {
	_ = syscall.Kill(-p.pid, sig)
	_ = syscall.Kill(p.pid, sig)
}
