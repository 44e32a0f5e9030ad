package main

import "syscall"

// childProcAttr makes a server instance die with this program (a killed
// harness must not leave servers behind on the private database).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
