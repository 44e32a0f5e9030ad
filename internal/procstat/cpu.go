package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 on every architecture for user space.
const clockTick = 10 * time.Millisecond

// CPU returns the CPU time (user + system) process pid has used so far,
// from /proc/<pid>/stat; its resolution is 10 ms.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	_, d, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	return d, nil
}

// CPUOf returns the CPU time used so far by all processes whose command
// name (comm, as ps shows it) is name, and how many there are: Postgres
// runs a process per connection, so its share of a run is the sum over
// them. Processes that end between two calls take their time with them,
// so a caller compares two calls over a window in which none ended (a
// run's pooled connections).
func CPUOf(name string) (time.Duration, int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, 0, err
	}
	var total time.Duration
	n := 0
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		comm, d, err := parseStat(b)
		if err != nil || comm != name {
			continue
		}
		total += d
		n++
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("no process named %q", name)
	}
	return total, n, nil
}

// parseStat reads comm and utime+stime from a /proc/<pid>/stat line. comm
// is in parentheses and may hold spaces and parentheses itself, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (string, time.Duration, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("malformed stat line")
	}
	comm := string(b[open+1 : end])
	// After ") ": state(3) ppid(4) ... utime(14) stime(15).
	fields := bytes.Fields(b[end+1:])
	if len(fields) < 13 {
		return "", 0, fmt.Errorf("stat line has %d fields after comm", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return "", 0, fmt.Errorf("parse utime/stime: %w", err)
		}
		ticks += n
	}
	return comm, time.Duration(ticks) * clockTick, nil
}
