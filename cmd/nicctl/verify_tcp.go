package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/trace"
)

// tcpProtocolReport is what the TCP protocol check (trace validation
// against the Go transcription of the TLA+ TCP spec) says per connection.
type tcpProtocolReport struct {
	Spec string // what was checked, for the summary line
	// Checked holds the connections validated; Violations the first
	// violation on each connection that has one.
	Checked    map[uint32]bool
	Violations map[uint32]string
}

// tcpProtocolCheck validates a trace's TCP events against the Go
// transcription of the TLA+ TCP spec (models.ValidateTCPTrace, tla/Tcp.tla):
// each endpoint replayed alone with 2^32 arithmetic, and paired endpoints
// cross-checked.
var tcpProtocolCheck = func(h trace.Header, evs []trace.Event) (tcpProtocolReport, error) {
	r := models.ValidateTCPTrace(evs)
	out := tcpProtocolReport{Spec: "tla/Tcp.tla", Checked: map[uint32]bool{}, Violations: map[uint32]string{}}
	for _, c := range r.Conns {
		out.Checked[c.Conn] = true
		if c.Violation != nil {
			out.Violations[c.Conn] = c.Violation.Property + ": " + c.Violation.Message
		}
	}
	if v := r.Violation; v != nil {
		if _, ok := out.Violations[v.Conn]; !ok {
			out.Violations[v.Conn] = v.Property + ": " + v.Message
		}
	}
	return out, nil
}

// verifyTCP runs the TCP checks, printing one line per connection and a
// summary per check, and reports whether nothing was violated or left
// undecided.
func verifyTCP(w io.Writer, h trace.Header, evs []trace.Event, opt models.FIFOOptions) bool {
	all := true
	t0 := time.Now()
	rep := models.CheckTCPStreams(evs, opt.Timeout)
	streamsTook := time.Since(t0)

	var proto *tcpProtocolReport
	protoStatus := "SKIPPED TCP protocol: not checked"
	if tcpProtocolCheck != nil {
		t1 := time.Now()
		p, err := tcpProtocolCheck(h, evs)
		switch {
		case err != nil:
			all = false
			protoStatus = fmt.Sprintf("FAILED TCP protocol: %v", err)
		case len(p.Violations) > 0:
			all = false
			proto = &p
			protoStatus = fmt.Sprintf("FAILED TCP protocol (%s): %d of %d connections violate it", p.Spec, len(p.Violations), len(p.Checked))
		default:
			proto = &p
			protoStatus = fmt.Sprintf("HELD   TCP protocol (%s): %d connections replayed in %v", p.Spec, len(p.Checked), time.Since(t1).Round(time.Millisecond))
		}
	}

	fmt.Fprintf(w, "TCP: %d connections, %d operations in %d stream directions\n", len(rep.Conns), rep.Ops, len(rep.Results))
	if h.Dropped > 0 {
		fmt.Fprintf(w, "  note: the recorder dropped %d events at the end of the trace: a violation near its end may be a write whose event was lost\n", h.Dropped)
	}
	for _, c := range rep.Conns {
		addrs := "?->?"
		if c.Opened {
			addrs = fmt.Sprintf("%v->%v", c.Local, c.Remote)
		}
		fmt.Fprintf(w, "  conn %d %s: %d events; streams: %s; protocol: %s\n",
			c.Conn, addrs, c.Events, streamStatus(c, rep.ForConn(c.Conn)), protocolStatus(c.Conn, proto))
	}

	held, bad, undecided, skipped := rep.Count(models.StreamHeld), rep.Count(models.StreamViolated),
		rep.Count(models.StreamUnknown), rep.Count(models.StreamSkipped)
	var unchecked uint64
	for _, r := range rep.Results {
		unchecked += r.Unchecked
	}
	tail := ""
	if skipped > 0 {
		tail += fmt.Sprintf(", %d skipped", skipped)
	}
	if unchecked > 0 {
		tail += fmt.Sprintf("; %d bytes recorded without data (arena full) checked by length only", unchecked)
	}
	if bad == 0 && undecided == 0 {
		fmt.Fprintf(w, "HELD   TCP byte streams (porcupine): %d directions linearizable as byte streams in %v%s\n",
			held, streamsTook.Round(time.Millisecond), tail)
	} else {
		all = false
		fmt.Fprintf(w, "FAILED TCP byte streams (porcupine): %d directions violated, %d undecided, %d held%s\n", bad, undecided, held, tail)
		for _, r := range rep.Results {
			if r.Verdict == models.StreamViolated || r.Verdict == models.StreamUnknown {
				fmt.Fprintf(w, "         %s %s: %s\n", r.Direction(), strings.ToUpper(r.Verdict.String()), r.Reason)
			}
		}
		if bad > 0 && opt.VisualizeDir != "" {
			prefix := opt.Prefix
			if prefix == "" {
				prefix = "porcupine"
			}
			paths, err := rep.WriteVisualization(filepath.Join(opt.VisualizeDir, prefix+"-tcp"))
			if err != nil {
				fmt.Fprintf(w, "         visualization: %v\n", err)
			}
			for _, p := range paths {
				fmt.Fprintf(w, "         visualization: %s\n", p)
			}
		}
	}
	fmt.Fprintln(w, protoStatus)
	return all
}

// streamStatus summarizes the byte-stream results of the directions
// connection c writes or reads.
func streamStatus(c models.TCPConnInfo, rs []models.TCPStreamResult) string {
	var bad []string
	skipped := ""
	var wrote, read, unchecked uint64
	for _, r := range rs {
		switch r.Verdict {
		case models.StreamViolated, models.StreamUnknown:
			bad = append(bad, fmt.Sprintf("%s %s: %s", strings.ToUpper(r.Verdict.String()), r.Direction(), r.Reason))
		case models.StreamSkipped:
			skipped = "skipped, " + r.Reason
		}
		if r.Writer == c.Conn {
			wrote += r.BytesWritten
		}
		if r.HasReader && r.Reader == c.Conn {
			read += r.BytesRead
		}
		unchecked += r.Unchecked
	}
	if len(bad) > 0 {
		return strings.Join(bad, "; ")
	}
	if skipped != "" {
		return skipped
	}
	s := fmt.Sprintf("held (wrote %d bytes to conn %d, read %d bytes from it", wrote, c.Peer, read)
	if unchecked > 0 {
		s += fmt.Sprintf("; %d bytes checked by length only, their data was not recorded", unchecked)
	}
	return s + ")"
}

func protocolStatus(conn uint32, p *tcpProtocolReport) string {
	switch {
	case p == nil:
		return "not checked"
	case p.Violations[conn] != "":
		return "VIOLATED: " + p.Violations[conn]
	case p.Checked[conn]:
		return "held"
	}
	return "not checked"
}
