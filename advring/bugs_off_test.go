//go:build !ixgbebugs

package advring

import "testing"

// Without the ixgbebugs tag the bug switches are dead: has is constant
// false, whatever is set.
func TestBugsOffWithoutTag(t *testing.T) {
	all := bug(allBugs)
	if all.has(all) {
		t.Fatal("bug switches are live in a build without -tags ixgbebugs")
	}
}
