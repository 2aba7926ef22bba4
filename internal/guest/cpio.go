package guest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Entry is one file of an initramfs.
type Entry struct {
	Path string // inside the archive, without a leading slash
	Mode uint32 // permission bits, or'ed with a type below
	Data []byte // file contents (regular files) or target (symlinks)
	// Source, when set, is a host file whose contents are used instead of
	// Data (large binaries are streamed, not held in memory).
	Source string
	Major  uint32 // device numbers (character devices)
	Minor  uint32
}

// File types for Entry.Mode (the st_mode type bits).
const (
	TypeDir     = 0o040000
	TypeRegular = 0o100000
	TypeSymlink = 0o120000
	TypeCharDev = 0o020000
)

// WriteCPIO writes entries as an uncompressed "newc" cpio archive (the
// initramfs format of Documentation/driver-api/early-userspace/buffer-format.rst):
// a 110-byte ASCII header per file, the name, the data, each padded to 4
// bytes, and a TRAILER!!! entry. Parent directories are added as needed.
func WriteCPIO(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	dirs := map[string]bool{}
	var all []Entry
	for _, e := range entries {
		e.Path = strings.TrimPrefix(path.Clean("/"+e.Path), "/")
		var parents []string
		for d := path.Dir(e.Path); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			dirs[parents[i]] = true
			all = append(all, Entry{Path: parents[i], Mode: TypeDir | 0o755})
		}
		if e.Mode&0o170000 == TypeDir {
			if dirs[e.Path] {
				continue
			}
			dirs[e.Path] = true
		}
		all = append(all, e)
	}
	// Parents were appended before their contents, as the kernel wants.
	ino := uint32(1)
	for _, e := range all {
		size := int64(len(e.Data))
		var src *os.File
		if e.Source != "" {
			f, err := os.Open(e.Source)
			if err != nil {
				return fmt.Errorf("initramfs: %w", err)
			}
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return fmt.Errorf("initramfs: %w", err)
			}
			src, size = f, st.Size()
		}
		var r io.Reader
		if src != nil {
			r = src
		}
		err := writeEntry(bw, ino, e, size, r)
		if src != nil {
			src.Close()
		}
		if err != nil {
			return err
		}
		ino++
	}
	if err := writeEntry(bw, 0, Entry{Path: "TRAILER!!!"}, 0, nil); err != nil {
		return err
	}
	return bw.Flush()
}

func pad4(w io.Writer, n int64) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

func writeEntry(w io.Writer, ino uint32, e Entry, size int64, src io.Reader) error {
	nlink := 1
	if e.Mode&0o170000 == TypeDir {
		nlink = 2
	}
	name := e.Path + "\x00"
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.Mode, 0, 0, nlink, 0, size, 0, 0, e.Major, e.Minor, len(name), 0)
	if _, err := io.WriteString(w, hdr+name); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := pad4(w, int64(len(hdr)+len(name))); err != nil {
		return err
	}
	if src != nil {
		n, err := io.Copy(w, src)
		if err != nil {
			return fmt.Errorf("initramfs: copy %s: %w", e.Source, err)
		}
		if n != size {
			return fmt.Errorf("initramfs: %s changed size while being copied", e.Source)
		}
	} else if _, err := w.Write(e.Data); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return pad4(w, size)
}
