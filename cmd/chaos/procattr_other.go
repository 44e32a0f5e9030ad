//go:build !linux

package main

import "syscall"

// childProcAttr: outside Linux there is no parent-death signal; the
// script's clean-up stops leftover instances by their recorded pids.
func childProcAttr() *syscall.SysProcAttr { return nil }
