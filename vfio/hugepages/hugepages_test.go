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

// Reserving on the live system is tested inside the QEMU guest of the vfio
// package (TestInGuestNicctl runs nicctl hugepages --reserve, in total and
// per node): on the host it would change the reservation under the feet of
// other packages' tests running at the same time.
