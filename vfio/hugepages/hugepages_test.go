package hugepages

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func fake(t *testing.T, total, free int, nodes map[int][2]int) Sysfs {
	t.Helper()
	root := t.TempDir()
	put := func(dir string, tot, fr int) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "nr_hugepages"), []byte(itoa(tot)+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "free_hugepages"), []byte(itoa(fr)+"\n"), 0o644)
	}
	put(filepath.Join(root, "kernel/mm/hugepages", Size2M), total, free)
	for n, v := range nodes {
		put(filepath.Join(root, "devices/system/node", "node"+itoa(n), "hugepages", Size2M), v[0], v[1])
	}
	os.MkdirAll(filepath.Join(root, "devices/system/node/power"), 0o755) // not a node
	return Sysfs{Root: root}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestStatusFake(t *testing.T) {
	s := fake(t, 6, 4, map[int][2]int{0: {4, 3}, 1: {2, 1}})
	pools, err := s.Status()
	if err != nil {
		t.Fatal(err)
	}
	want := []Pool{{-1, 6, 4}, {0, 4, 3}, {1, 2, 1}}
	if len(pools) != len(want) {
		t.Fatalf("pools %+v", pools)
	}
	for i := range want {
		if pools[i] != want[i] {
			t.Errorf("pool %d = %+v, want %+v", i, pools[i], want[i])
		}
	}
}

func TestReserveFake(t *testing.T) {
	s := fake(t, 0, 0, map[int][2]int{0: {0, 0}})
	p, err := s.Reserve(0, 8)
	if err != nil || p.Total != 8 || p.Node != 0 {
		t.Fatalf("reserve: %+v %v", p, err)
	}
	if _, err := s.Reserve(-1, -1); err == nil {
		t.Error("negative reservation accepted")
	}
	if _, err := (Sysfs{Root: t.TempDir()}).Status(); err == nil || !strings.Contains(err.Error(), "no 2 MiB hugepage pool") {
		t.Errorf("missing pool: %v", err)
	}
}

// TestReserveLive reserves pages on the running system and restores the
// previous count (root only).
func TestReserveLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reserving hugepages needs root")
	}
	before, err := System.Status()
	if err != nil {
		t.Skipf("no hugepage support: %v", err)
	}
	t.Cleanup(func() { System.Reserve(-1, before[0].Total) })
	want := before[0].Total + 2
	p, err := System.Reserve(-1, want)
	if err != nil {
		t.Skipf("the kernel could not reserve 2 more hugepages: %v", err)
	}
	if p.Total != want || p.Free < 2 {
		t.Errorf("after reserving %d: %+v", want, p)
	}
}
