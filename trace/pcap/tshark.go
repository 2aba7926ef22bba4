package pcap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// TsharkReport is what tshark found in a capture.
type TsharkReport struct {
	Frames       int // frames tshark read
	Malformed    int // frames with a malformed-packet expert item
	BadChecksums int // frames with an IPv4, ICMP, UDP or TCP checksum tshark judged bad
	ExpertErrors int // frames with any expert item of severity error (includes both above)
	// Flagged holds tshark's one-line summary of every frame counted in
	// Malformed, BadChecksums or ExpertErrors, for error messages.
	Flagged []string
}

// Clean reports whether tshark found nothing wrong.
func (r TsharkReport) Clean() bool {
	return r.Malformed == 0 && r.BadChecksums == 0 && r.ExpertErrors == 0
}

// ErrNoTshark is returned by Tshark when tshark is not installed.
var ErrNoTshark = errors.New("pcap: tshark not installed (apt-get install -y tshark)")

// tsharkPrefs turn on the checksum validation Wireshark leaves off by
// default (ICMP checksums are always checked).
//
// Every UDP and TCP port is decoded as plain data: the check is about the layers
// verinic builds (Ethernet to UDP/TCP), and test payloads on random ports
// otherwise trip application dissectors chosen by port number (RTCP on an
// even ephemeral port reports its own "malformed packet").
var tsharkPrefs = []string{
	"-o", "ip.check_checksum:TRUE",
	"-o", "udp.check_checksum:TRUE",
	"-o", "tcp.check_checksum:TRUE",
	"-d", "udp.port==1-65535,data",
	"-d", "tcp.port==1-65535,data",
}

// Tshark dissects the capture at path with tshark, checksum validation on
// for IPv4, ICMP, UDP and TCP, and counts frames, malformed frames, bad
// checksums and expert errors.
func Tshark(ctx context.Context, path string) (TsharkReport, error) {
	if _, err := exec.LookPath("tshark"); err != nil {
		return TsharkReport{}, ErrNoTshark
	}
	run := func(filter string, fields bool) (string, error) {
		args := append([]string{"-r", path, "-n"}, tsharkPrefs...)
		if filter != "" {
			args = append(args, "-Y", filter)
		}
		if fields {
			args = append(args, "-T", "fields", "-e", "frame.number")
		}
		cmd := exec.CommandContext(ctx, "tshark", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("pcap: tshark %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return string(out), nil
	}
	count := func(filter string) (int, error) {
		out, err := run(filter, true)
		return len(strings.Fields(out)), err
	}
	var r TsharkReport
	var err error
	if r.Frames, err = count(""); err != nil {
		return r, err
	}
	if r.Malformed, err = count("_ws.malformed"); err != nil {
		return r, err
	}
	bad := `ip.checksum.status == "Bad" || icmp.checksum.status == "Bad" || udp.checksum.status == "Bad" || tcp.checksum.status == "Bad"`
	if r.BadChecksums, err = count(bad); err != nil {
		return r, err
	}
	if r.ExpertErrors, err = count("_ws.expert.severity == error"); err != nil {
		return r, err
	}
	if !r.Clean() {
		out, err := run("_ws.malformed || _ws.expert.severity == error || "+bad, false)
		if err != nil {
			return r, err
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			r.Flagged = append(r.Flagged, strings.TrimSpace(line))
		}
	}
	return r, nil
}
