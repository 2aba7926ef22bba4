package hostlink

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Permission denied on /dev/net/tun is not blamed on the tun module.
func TestTunOpenErrorHints(t *testing.T) {
	for _, c := range []struct {
		errno     unix.Errno
		want, not string
	}{
		{unix.EACCES, "root", "tun module"},
		{unix.EPERM, "root", "tun module"},
		{unix.ENOENT, "modprobe tun", "root"},
		{unix.ENODEV, "modprobe tun", "root"},
	} {
		msg := tunOpenError(c.errno).Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, c.not) {
			t.Errorf("%v: %s", c.errno, msg)
		}
	}
}
