// Package fuzz holds fuzz targets that cross packages. Its tests only:
//
//   - FuzzDifferential parses the same bytes with proto/header and with
//     gopacket's layers, layer by layer, and fails on any disagreement about
//     validity or field values beyond the documented differences (see
//     differential_test.go).
//
// Per-parser targets live next to their parsers (proto/header). Run every
// target for a short burst with .ci/fuzz.sh.
package fuzz
