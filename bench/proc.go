package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// Linux fixes it at 100 for user space whatever the kernel's HZ.
const clockTicks = 100

// procs are the processes whose cost a run reports.
type procs struct {
	server, cassandra int
	// more are the other servers the appends go to (--spread-urls): their
	// CPU is added to the server's, and its peak RSS is the largest of any.
	more            []int
	serverInProcess bool
}

// servers is every server pid measured.
func (p procs) servers() []int {
	if p.server == 0 {
		return nil
	}
	return append([]int{p.server}, p.more...)
}

// findProcs resolves the pids: the given ones, else the process listening
// on the server's port and the one running CassandraDaemon. A process not
// found is left 0 and its figures are omitted.
func findProcs(c *Config, needServer bool) procs {
	p := procs{server: c.ServerPID, cassandra: c.CassandraPID}
	// A process on another machine (--allow-remote) is not here to measure,
	// and one here listening on the same port would be the wrong one.
	remoteCassandra := len(c.CassandraHosts) > 0 && loopbackHost(c.CassandraHosts[0]) != nil
	remoteServer := true
	if u, err := url.Parse(c.URL); err == nil {
		remoteServer = loopbackHost(u.Hostname()) != nil
	}
	if p.cassandra == 0 && len(c.CassandraHosts) > 0 && !remoteCassandra {
		// Several nodes may run on one host (other loopback addresses):
		// the one listening on the first host's CQL port.
		if ip := net.ParseIP(c.CassandraHosts[0]); ip != nil {
			p.cassandra = findListener(ip, 9042)
		}
	}
	if p.cassandra == 0 && !remoteCassandra {
		p.cassandra = findByCmdline("org.apache.cassandra.service.CassandraDaemon")
	}
	if needServer && p.server == 0 && !remoteServer {
		if u, err := url.Parse(c.URL); err == nil {
			if port, err := strconv.Atoi(u.Port()); err == nil {
				p.server = findListener(nil, port)
			}
		}
	}
	if needServer && p.server != 0 && c.ServerPID == 0 {
		for _, s := range c.SpreadURLs {
			u, err := url.Parse(s)
			if err != nil || loopbackHost(u.Hostname()) != nil {
				continue
			}
			if port, err := strconv.Atoi(u.Port()); err == nil {
				if pid := findListener(nil, port); pid != 0 && pid != p.server && !slices.Contains(p.more, pid) {
					p.more = append(p.more, pid)
				}
			}
		}
	}
	p.serverInProcess = p.server == os.Getpid()
	return p
}

// findByCmdline returns the first process whose command line contains s.
func findByCmdline(s string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(d + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			return pid
		}
	}
	return 0
}

// findListener returns the process holding a TCP socket listening on
// port (on ip when it is an IPv4 address, on any address when nil): the
// listening socket's inode from /proc/net/tcp{,6}, then the process with
// that inode among its file descriptors. This finds the server however it
// was started (go run, a built binary, a container runtime on this host).
func findListener(ip net.IP, port int) int {
	wantAddr := ""
	if v4 := ip.To4(); v4 != nil {
		// /proc/net/tcp prints the address as one little-endian word.
		wantAddr = fmt.Sprintf("%02X%02X%02X%02X", v4[3], v4[2], v4[1], v4[0])
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexAddr, hexPort, ok := strings.Cut(fs[1], ":")
			if wantAddr != "" && hexAddr != wantAddr && hexAddr != "00000000" {
				continue
			}
			if p, err := strconv.ParseInt(hexPort, 16, 32); ok && err == nil && int(p) == port {
				inodes[fs[9]] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		fds, _ := filepath.Glob(d + "/fd/*")
		for _, fd := range fds {
			l, err := os.Readlink(fd)
			if err == nil && strings.HasPrefix(l, "socket:[") && inodes[l[8:len(l)-1]] {
				pid, _ := strconv.Atoi(filepath.Base(d))
				return pid
			}
		}
	}
	return 0
}

// cpuTime is the user + system CPU pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'. Then state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fs))
	}
	ut, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// rssBytes reads a VmRSS-like field ("VmRSS", "VmHWM") of pid's status.
func rssBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			fs := strings.Fields(v)
			if len(fs) >= 1 {
				kb, _ := strconv.ParseInt(fs[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// procMeter measures one phase: CPU between start and stop, and the
// servers' RSS sampled every 200 ms in between. (VmHWM would be the peak
// of the process's whole life, not of the phase.)
type procMeter struct {
	p       procs
	srvCPU0 []time.Duration // of p.servers(), in order
	casCPU0 time.Duration
	srvOK   bool
	casOK   bool
	mu      sync.Mutex
	peakRSS int64
	done    chan struct{}
	wg      sync.WaitGroup
}

func startMeter(p procs) *procMeter {
	m := &procMeter{p: p, done: make(chan struct{})}
	if srv := p.servers(); len(srv) > 0 {
		m.srvOK = true
		for _, pid := range srv {
			c, ok := mustCPU(pid)
			m.srvCPU0 = append(m.srvCPU0, c)
			m.srvOK = m.srvOK && ok
		}
		m.peakRSS = m.serversRSS()
		m.wg.Add(1)
		go m.sampleRSS()
	}
	if p.cassandra > 0 {
		m.casCPU0, m.casOK = mustCPU(p.cassandra)
	}
	return m
}

func mustCPU(pid int) (time.Duration, bool) {
	d, err := cpuTime(pid)
	return d, err == nil
}

func (m *procMeter) sampleRSS() {
	defer m.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
			r := m.serversRSS()
			m.mu.Lock()
			m.peakRSS = max(m.peakRSS, r)
			m.mu.Unlock()
		}
	}
}

// serversRSS is the largest RSS of the servers now: the target is each
// server's.
func (m *procMeter) serversRSS() int64 {
	var r int64
	for _, pid := range m.p.servers() {
		r = max(r, rssBytes(pid, "VmRSS"))
	}
	return r
}

// stop ends the measurement and reports it per event.
func (m *procMeter) stop(events int64) *ProcessStats {
	close(m.done)
	m.wg.Wait()
	ps := &ProcessStats{ServerPID: m.p.server, MoreServerPIDs: m.p.more, CassandraPID: m.p.cassandra, ServerInProcess: m.p.serverInProcess}
	perEvent := func(pids []int, cpu0 []time.Duration, ok bool) *float64 {
		if !ok || events == 0 {
			return nil
		}
		var used time.Duration
		for i, pid := range pids {
			cpu1, err := cpuTime(pid)
			if err != nil {
				return nil
			}
			used += cpu1 - cpu0[i]
		}
		v := float64(used.Microseconds()) / float64(events)
		return &v
	}
	if srv := m.p.servers(); len(srv) > 0 {
		ps.ServerCPUUSPerEvent = perEvent(srv, m.srvCPU0, m.srvOK)
		m.mu.Lock()
		ps.ServerPeakRSSBytes = max(m.peakRSS, m.serversRSS())
		m.mu.Unlock()
	}
	if m.p.cassandra > 0 {
		ps.CassandraCPUUSPerEvent = perEvent([]int{m.p.cassandra}, []time.Duration{m.casCPU0}, m.casOK)
	}
	if ps.ServerPID == 0 && ps.CassandraPID == 0 {
		return nil
	}
	return ps
}
