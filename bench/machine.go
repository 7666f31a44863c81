package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Machine describes the machine a benchmark ran on, as far as Linux tells
// it without privileges. Unknown fields are left empty.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemoryBytes int64  `json:"memory_bytes"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel"`
	// Virtualization is the machine's DMI product name, or says that the
	// CPU reports a hypervisor; empty if neither.
	Virtualization string `json:"virtualization,omitempty"`
	// DataDir is where the runs' files went, on Device, a Filesystem with
	// DiskBytes in all and DiskFreeBytes free (for unprivileged users)
	// when the description was taken.
	DataDir       string `json:"data_dir"`
	Filesystem    string `json:"filesystem"`
	MountOptions  string `json:"mount_options"`
	Device        string `json:"device"`
	DiskBytes     int64  `json:"disk_bytes"`
	DiskFreeBytes int64  `json:"disk_free_bytes"`
	// Journal says whether an ext4 filesystem has a journal ("yes", "no"
	// from /proc/fs/jbd2); empty for other filesystems. Without one, ext4
	// does not reuse recently deleted inodes, which makes creating files
	// after deleting many slower.
	Journal string `json:"journal,omitempty"`
	// OpenFileLimit is RLIMIT_NOFILE (`ulimit -n`), soft and hard.
	OpenFileLimit     uint64 `json:"open_file_limit"`
	OpenFileLimitHard uint64 `json:"open_file_limit_hard"`
}

// DescribeMachine describes this machine and the filesystem of dataDir.
func DescribeMachine(dataDir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.CPUModel = procField("/proc/cpuinfo", "model name", ":")
	if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal", ":"), " kB"), 10, 64); err == nil {
		m.MemoryBytes = kb << 10
	}
	m.OS = strings.Trim(procField("/etc/os-release", "PRETTY_NAME", "="), `"`)
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/sys/class/dmi/id/product_name"); err == nil {
		m.Virtualization = strings.TrimSpace(string(b))
	} else if slices.Contains(strings.Fields(procField("/proc/cpuinfo", "flags", ":")), "hypervisor") {
		m.Virtualization = "a virtual machine (the CPU reports a hypervisor)"
	}
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	if real, err := filepath.EvalSymlinks(dataDir); err == nil {
		dataDir = real
	}
	m.DataDir = dataDir
	m.Device, m.Filesystem, m.MountOptions = mountOf(dataDir)
	if m.Filesystem == "ext4" && strings.HasPrefix(m.Device, "/dev/") {
		m.Journal = "no"
		if _, err := os.Stat(filepath.Join("/proc/fs/jbd2", filepath.Base(m.Device)+"-8")); err == nil {
			m.Journal = "yes"
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dataDir, &st); err == nil {
		m.DiskBytes = int64(st.Blocks) * st.Bsize
		m.DiskFreeBytes = int64(st.Bavail) * st.Bsize
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		m.OpenFileLimit, m.OpenFileLimitHard = lim.Cur, lim.Max
	}
	return m
}

// procField is the value of the first line "NAME<sep>value" of file,
// trimmed; "" if there is none.
func procField(file, name, sep string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// mountOf finds the mount that holds dir in /proc/mounts: the one with
// the longest mount point that is a prefix of dir.
func mountOf(dir string) (device, fstype, options string) {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "", "", ""
	}
	best := -1
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		mp := f[1]
		if dir != mp && !strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if len(mp) > best {
			best = len(mp)
			device, fstype, options = f[0], f[2], f[3]
		}
	}
	return device, fstype, options
}

// writeRows writes the rows of a Markdown table that describe m (CPU,
// memory, OS, Go, data directory) to b, and returns the function that
// writes one more row.
func (m Machine) writeRows(b *bytes.Buffer) func(k, format string, v ...any) {
	row := func(k, format string, v ...any) { fmt.Fprintf(b, "| %s | "+format+" |\n", append([]any{k}, v...)...) }
	row("CPU", "%d cores, %s", m.CPUs, cmpOrString(m.CPUModel, "model unknown"))
	if m.Virtualization != "" {
		row("virtualization", "%s", m.Virtualization)
	}
	row("memory", "%s", formatBytes(m.MemoryBytes))
	row("OS, kernel", "%s, Linux %s", m.OS, m.Kernel)
	row("Go", "%s", m.GoVersion)
	row("data directory", "`%s` on %s (%s, `%s`)", m.DataDir, m.Device, m.Filesystem, m.MountOptions)
	return row
}
