// Package hugepages shows and reserves the kernel's 2 MiB hugepages, in total
// and per NUMA node, through sysfs (Documentation/admin-guide/mm/hugetlbpage.rst).
package hugepages

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Size2M is the directory name of the 2 MiB pool in sysfs.
const Size2M = "hugepages-2048kB"

// Pool is the state of one 2 MiB pool: system-wide (Node == -1) or one NUMA
// node's.
type Pool struct {
	Node  int `json:"node"`
	Total int `json:"total"`
	Free  int `json:"free"`
}

// Sysfs is a view of sysfs rooted at Root ("/sys").
type Sysfs struct{ Root string }

// System is the running system.
var System = Sysfs{Root: "/sys"}

func readInt(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return n, nil
}

func (s Sysfs) poolDir(node int) string {
	if node < 0 {
		return filepath.Join(s.Root, "kernel/mm/hugepages", Size2M)
	}
	return filepath.Join(s.Root, "devices/system/node", "node"+strconv.Itoa(node), "hugepages", Size2M)
}

func (s Sysfs) pool(node int) (Pool, error) {
	dir := s.poolDir(node)
	total, err := readInt(filepath.Join(dir, "nr_hugepages"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Pool{}, fmt.Errorf("no 2 MiB hugepage pool at %s: the kernel lacks hugetlbfs support or 2 MiB pages", dir)
		}
		return Pool{}, fmt.Errorf("read hugepage pool: %w", err)
	}
	free, err := readInt(filepath.Join(dir, "free_hugepages"))
	if err != nil {
		return Pool{}, fmt.Errorf("read hugepage pool: %w", err)
	}
	return Pool{Node: node, Total: total, Free: free}, nil
}

// Nodes returns the NUMA nodes that have a 2 MiB pool, in order.
func (s Sysfs) Nodes() ([]int, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, "devices/system/node"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no NUMA information: only the system-wide pool
		}
		return nil, err
	}
	var nodes []int
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "node"))
		if err != nil || !strings.HasPrefix(e.Name(), "node") {
			continue
		}
		if _, err := os.Stat(s.poolDir(n)); err == nil {
			nodes = append(nodes, n)
		}
	}
	sort.Ints(nodes)
	return nodes, nil
}

// Status returns the system-wide pool followed by each node's.
func (s Sysfs) Status() ([]Pool, error) {
	all, err := s.pool(-1)
	if err != nil {
		return nil, err
	}
	pools := []Pool{all}
	nodes, err := s.Nodes()
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		p, err := s.pool(n)
		if err != nil {
			return nil, err
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// Reserve asks the kernel for count 2 MiB pages in total (node < 0) or on
// one NUMA node, and returns the pool as the kernel left it: the kernel may
// grant fewer pages than asked when memory is fragmented, which is reported
// as an error that says how many it got.
func (s Sysfs) Reserve(node, count int) (Pool, error) {
	if count < 0 {
		return Pool{}, fmt.Errorf("reserve %d hugepages: the count must not be negative", count)
	}
	dir := s.poolDir(node)
	if err := os.WriteFile(filepath.Join(dir, "nr_hugepages"), []byte(strconv.Itoa(count)), 0); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return Pool{}, fmt.Errorf("reserve hugepages: %w (run as root)", err)
		}
		return Pool{}, fmt.Errorf("reserve hugepages: %w", err)
	}
	p, err := s.pool(node)
	if err != nil {
		return p, err
	}
	if p.Total != count {
		where := "in total"
		if node >= 0 {
			where = fmt.Sprintf("on node %d", node)
		}
		return p, fmt.Errorf("asked for %d hugepages %s, the kernel reserved %d (memory too fragmented? reserve at boot with hugepages=%d on the kernel command line)", count, where, p.Total, count)
	}
	return p, nil
}
