// Package procstat reads a process's memory figures from /proc/<pid>/status
// (Linux). The load tool and the chaos harness report a server's resident
// memory from outside the process, the way an operator would see it.
package procstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Memory is what /proc/<pid>/status says of one process's memory, in bytes.
type Memory struct {
	// RSS (VmRSS) is the resident set size now.
	RSS int64
	// HWM (VmHWM) is the peak resident set size over the life of the
	// process: a peak between two samples is not missed.
	HWM int64
}

// Read returns the memory figures of process pid.
func Read(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	m, err := parse(f)
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	return m, nil
}

// parse reads the VmRSS and VmHWM lines ("VmRSS:	   12345 kB") of a
// status file; both must be present.
func parse(r io.Reader) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", name, sc.Text())
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("parse %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.RSS = n * 1024
		} else {
			m.HWM = n * 1024
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if seen != 2 {
		return m, fmt.Errorf("no VmRSS and VmHWM lines (a kernel thread, or not Linux)")
	}
	return m, nil
}
