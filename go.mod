module github.com/verinic/verinic

go 1.26.0

require (
	github.com/anishathalye/porcupine v1.3.1
	github.com/google/gopacket v1.1.19
	golang.org/x/sys v0.50.0
	pgregory.net/rapid v1.3.0
)
