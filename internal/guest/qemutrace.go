package guest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// QEMU trace windows (Config.QEMUTrace): the guest asks for one with a wait
// named "qemutrace-on:NAME" and ends it with "qemutrace-off:NAME"; Run
// handles both itself over QEMU's QMP socket.

// QEMUTraceEnv is set to 1 in the guest when Config.QEMUTrace is.
const QEMUTraceEnv = "VERINIC_GUEST_QEMU_TRACE"

// ErrNoQEMUTrace reports that the guest was booted without QEMU trace
// windows (Config.QEMUTrace empty).
var ErrNoQEMUTrace = errors.New("guest: QEMU trace windows are off in this guest (Config.QEMUTrace)")

const (
	qemuTraceOn  = "qemutrace-on:"
	qemuTraceOff = "qemutrace-off:"
)

// QEMUTraceOn, in the guest, starts the QEMU trace window name (one word);
// QEMU's events are then written to a file of that name on the host until
// QEMUTraceOff(name). The host has switched the events on when it returns.
func QEMUTraceOn(name string) error {
	if os.Getenv(QEMUTraceEnv) != "1" {
		return ErrNoQEMUTrace
	}
	return WaitForHost(qemuTraceOn+name, time.Minute)
}

// QEMUTraceOff, in the guest, ends the QEMU trace window name.
func QEMUTraceOff(name string) error {
	if os.Getenv(QEMUTraceEnv) != "1" {
		return ErrNoQEMUTrace
	}
	return WaitForHost(qemuTraceOff+name, time.Minute)
}

// qemuTraceWait reads a wait name of the form qemutrace-on:NAME or
// qemutrace-off:NAME.
func qemuTraceWait(wait string) (on bool, window string, ok bool) {
	if w, found := strings.CutPrefix(wait, qemuTraceOn); found && validWindow(w) {
		return true, w, true
	}
	if w, found := strings.CutPrefix(wait, qemuTraceOff); found && validWindow(w) {
		return false, w, true
	}
	return false, "", false
}

func validWindow(w string) bool {
	return w != "" && !strings.ContainsAny(w, "/\\ ,") && w != "." && w != ".."
}

// qemuTraceWindow opens (on) or closes a window: the events switched on and
// QEMU's log moved to dir/qemutrace/window.log, or the events switched off
// and the log moved back to dir/qemu.log (which closes the window's file).
func qemuTraceWindow(dir string, events []string, on bool, window string) (string, error) {
	file := filepath.Join(dir, "qemutrace", window+".log")
	var cmds []qmpCommand
	if on {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return "", err
		}
		cmds = append(cmds, hmp("logfile "+file))
	}
	for _, ev := range events {
		cmds = append(cmds, qmpCommand{Execute: "trace-event-set-state", Arguments: map[string]any{"name": ev, "enable": on}})
	}
	if !on {
		cmds = append(cmds, hmp("logfile "+filepath.Join(dir, "qemu.log")))
	}
	if err := qmp(filepath.Join(dir, "qmp.sock"), cmds); err != nil {
		return "", fmt.Errorf("QEMU trace window %s: %w", window, err)
	}
	return file, nil
}

type qmpCommand struct {
	Execute   string         `json:"execute"`
	Arguments map[string]any `json:"arguments,omitempty"`
}

func hmp(line string) qmpCommand {
	return qmpCommand{Execute: "human-monitor-command", Arguments: map[string]any{"command-line": line}}
}

// qmp runs commands on QEMU's QMP socket (after qmp_capabilities), each
// answered with "return" or failing with QEMU's "error". Asynchronous
// events in between are skipped. A human-monitor-command's text answer is
// an error when it is not empty (the monitor prints only complaints).
func qmp(sock string, cmds []qmpCommand) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("QMP: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	read := func() (map[string]json.RawMessage, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, fmt.Errorf("QMP: %w", err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, fmt.Errorf("QMP: %q: %w", line, err)
			}
			if _, ev := m["event"]; !ev {
				return m, nil
			}
		}
	}
	if _, err := read(); err != nil { // the greeting
		return err
	}
	enc := json.NewEncoder(c)
	for _, cmd := range append([]qmpCommand{{Execute: "qmp_capabilities"}}, cmds...) {
		if err := enc.Encode(cmd); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd.Execute, err)
		}
		m, err := read()
		if err != nil {
			return fmt.Errorf("QMP %s: %w", cmd.Execute, err)
		}
		if e, bad := m["error"]; bad {
			return fmt.Errorf("QMP %s %v: %s", cmd.Execute, cmd.Arguments, e)
		}
		if cmd.Execute == "human-monitor-command" {
			var text string
			json.Unmarshal(m["return"], &text)
			if strings.TrimSpace(text) != "" {
				return fmt.Errorf("monitor %v: %s", cmd.Arguments["command-line"], strings.TrimSpace(text))
			}
		}
	}
	return nil
}
