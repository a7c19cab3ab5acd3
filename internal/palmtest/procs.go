package palmtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RecordedPIDs reads the pids a test's command wrote to file, a line per
// start of the command (such as `echo $$ $! >> FILE`: its shell, and the
// child it put in the background), waiting up to 10 s for n lines.
func RecordedPIDs(t testing.TB, file string, n int) [][]int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= n && bytes.HasSuffix(b, []byte("\n")) {
			var all [][]int
			for _, l := range lines {
				var pids []int
				for _, w := range strings.Fields(l) {
					pid, err := strconv.Atoi(w)
					if err != nil {
						t.Fatalf("%s: %q is not a list of pids", file, b)
					}
					pids = append(pids, pid)
				}
				all = append(all, pids)
			}
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command wrote %q to %s; want %d lines", b, file, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckGone fails the test unless every process of pids, and every process
// of the group pids[0] leads, is gone (or a zombie) within 3 s: killed
// processes take a moment to die. It skips the test where there is no
// /proc.
func CheckGone(t testing.TB, pids []int) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc to look for processes in")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := living(pids, pids[0])
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procStat is a process's state and group, from /proc/PID/stat; ok is
// false when there is no such process.
func procStat(pid int) (state byte, pgid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	pgid, _ = strconv.Atoi(f[2])
	return f[0][0], pgid, true
}

// living lists the processes, zombies aside, that are among pids or in
// the process group pgid.
func living(pids []int, pgid int) []string {
	var found []string
	for _, pid := range pids {
		if st, _, ok := procStat(pid); ok && st != 'Z' {
			found = append(found, fmt.Sprintf("pid %d (state %c)", pid, st))
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, g, ok := procStat(pid); ok && g == pgid && st != 'Z' {
			found = append(found, fmt.Sprintf("pid %d (state %c) in group %d", pid, st, pgid))
		}
	}
	return found
}
