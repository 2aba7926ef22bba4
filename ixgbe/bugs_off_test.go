//go:build !ixgbebugs

package ixgbe

import "testing"

// Without the ixgbebugs tag a bug set in the configuration is ignored: the
// driver runs the correct ring protocol (advring's TestBugsOffWithoutTag
// shows the engine's switches are dead) (bugs_test.go, with the tag, shows
// the same scenario catching each bug).
func TestBugsOffWithoutTag(t *testing.T) {
	all := ^ringBugs(0)
	if err := runBugScenario(t, all); err != nil {
		t.Fatalf("scenario with every bug set but the tag off: %v", err)
	}
}
