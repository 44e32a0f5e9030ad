package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	status := "Name:\tserver\nVmPeak:\t  900000 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   40960 kB\nThreads:\t8\n"
	m, err := parse(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 40960*1024 || m.HWM != 61440*1024 {
		t.Fatalf("got %+v", m)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\nVmHWM:\t1 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if _, err := parse(strings.NewReader(bad)); err == nil {
			t.Errorf("parse(%q): no error", bad)
		}
	}
}

func TestReadSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc here")
	}
	m, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Fatalf("implausible: %+v", m)
	}
}

func TestParseStat(t *testing.T) {
	// comm may hold spaces and parentheses: fields count from the last ')'.
	line := []byte("4242 (post (gres) x) S 1 4242 4242 0 -1 4194560 3 0 0 0 123 45 0 0 20 0 1 0 100 0 0\n")
	comm, d, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if comm != "post (gres) x" || d != 1680*time.Millisecond {
		t.Fatalf("got %q %v, want %q 1.68s", comm, d, "post (gres) x")
	}
	if _, _, err := parseStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("a short line parsed")
	}
}

func TestCPUOfThisProcess(t *testing.T) {
	// Burn some CPU, then our own figure must be positive and CPUOf must
	// find this process by its name.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	own, err := CPU(os.Getpid())
	if err != nil || own <= 0 {
		t.Fatalf("CPU(self) = %v, %v", own, err)
	}
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	comm, _, _ := parseStat(stat)
	total, n, err := CPUOf(comm)
	if err != nil || n < 1 || total < own {
		t.Fatalf("CPUOf(%q) = %v, %d, %v; own %v", comm, total, n, err, own)
	}
	if _, _, err := CPUOf("no such process name"); err == nil {
		t.Fatal("CPUOf found a process that does not exist")
	}
}
