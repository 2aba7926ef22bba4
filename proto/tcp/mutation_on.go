//go:build tcpmutation

package tcp

import (
	"fmt"
	"os"
	"sync/atomic"
)

var activeMutation atomic.Uint32

// MutationEnv names the environment variable that selects a mutation at
// start-up (a Mutation's String), so that the mutation suite can run the
// package's other tests in a child process with one mutation seeded.
const MutationEnv = "VERINIC_TCP_MUTATION"

func init() {
	if name := os.Getenv(MutationEnv); name != "" {
		m, ok := ParseMutation(name)
		if !ok {
			panic(fmt.Sprintf("%s=%q: no such mutation", MutationEnv, name))
		}
		SetMutation(m)
	}
}

// SetMutation makes every TCP layer in the process commit mistake m from
// now on (MutNone: none). Only the mutation suite calls it; it exists only
// in builds with -tags tcpmutation.
func SetMutation(m Mutation) { activeMutation.Store(uint32(m)) }

// Mutations returns every mutation (MutNone excluded).
func Mutations() []Mutation {
	var out []Mutation
	for m := MutNone + 1; m < mutCount; m++ {
		out = append(out, m)
	}
	return out
}

// ParseMutation returns the mutation named name.
func ParseMutation(name string) (Mutation, bool) {
	for m := MutNone; m < mutCount; m++ {
		if m.String() == name {
			return m, true
		}
	}
	return 0, false
}

func mutated(m Mutation) bool { return Mutation(activeMutation.Load()) == m }
