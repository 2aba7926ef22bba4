// Package models holds the Go transcriptions of the TLA+ specifications in
// tla/ (TxRing, RxRing, Mempool), a breadth-first explorer that checks them
// exhaustively for small constants, trace validation that replays recorded
// driver and device traces against them, and porcupine models that check
// recorded packet histories for linearizability as FIFO queues.
//
// The transcriptions keep the specs' variables and actions one for one, so
// the explorer's distinct-state counts equal TLC's (pinned by a test against
// tla/README.md). This is the verification gate that runs without the TLA+
// tools.
package models

import (
	"fmt"
	"strings"
)

// Invariant is a state predicate that must hold in every reachable state.
type Invariant[S any] struct {
	Name  string
	Holds func(s S) bool
}

// ActionProperty is a predicate on every step (s, t): TLA+'s [][P]_vars.
type ActionProperty[S any] struct {
	Name  string
	Holds func(s, t S) bool
}

// LeadsTo is a family of liveness properties Pending(k) ~> ~Pending(k) for
// k in 0..Count-1, checked under weak fairness of the spec's fair actions.
type LeadsTo[S any] struct {
	Name    string
	Count   int
	Pending func(s S, k int) bool
}

// Spec is a state machine the explorer can check.
type Spec[S any] struct {
	Name string
	Init func() []S
	// Next calls yield once per successor of s, naming the action taken.
	Next func(s S, yield func(action string, t S))
	// AppendKey appends a canonical encoding of s: equal states, equal keys.
	AppendKey  func(b []byte, s S) []byte
	Invariants []Invariant[S]
	Actions    []ActionProperty[S]
	// Fair lists the actions under weak fairness (WF_vars), by name;
	// Strong those under strong fairness (SF_vars).
	Fair     []string
	Strong   []string
	Liveness []LeadsTo[S]
}

// Violation describes the first property the explorer found violated.
type Violation struct {
	Property string
	// Trace is the behaviour from the initial state to the violation: one
	// line per state, with the action that led to it.
	Trace []string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("%s violated after %d steps:\n  %s", v.Property, len(v.Trace)-1, strings.Join(v.Trace, "\n  "))
}

// Result is the outcome of an exhaustive exploration.
type Result struct {
	Distinct  int // distinct states (TLC: "distinct states found")
	Generated int // states generated, including duplicates (TLC's count)
	Depth     int // BFS levels, the initial states being level 1 (TLC's "depth")
	Violation *Violation
}

type edge struct {
	to     int32
	action uint16
}

// Explore checks spec breadth-first: invariants on every state, action
// properties on every step, then the liveness properties on the complete
// state graph. It stops at the first safety violation, reporting the
// shortest behaviour that reaches it. maxStates bounds the search (0: no
// bound); exceeding it is an error.
func Explore[S any](spec Spec[S], maxStates int, describe func(S) string) (Result, error) {
	var res Result
	index := map[string]int32{}
	var states []S
	var parent []int32
	var via []uint16
	var level []int32
	actionID := map[string]uint16{}
	var actionName []string
	idOf := func(a string) uint16 {
		if id, ok := actionID[a]; ok {
			return id
		}
		id := uint16(len(actionName))
		actionID[a] = id
		actionName = append(actionName, a)
		return id
	}
	needGraph := len(spec.Liveness) > 0
	var edges [][]edge
	var key []byte

	trace := func(i int32, last string, lastState *S) []string {
		var out []string
		if lastState != nil {
			out = append(out, last+": "+describe(*lastState))
		}
		for ; i >= 0; i = parent[i] {
			name := "Init"
			if parent[i] >= 0 {
				name = actionName[via[i]]
			}
			out = append(out, name+": "+describe(states[i]))
		}
		for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
			out[l], out[r] = out[r], out[l]
		}
		return out
	}
	add := func(s S, from int32, action uint16, lvl int32) (int32, *Violation) {
		res.Generated++
		key = spec.AppendKey(key[:0], s)
		if id, ok := index[string(key)]; ok {
			return id, nil
		}
		id := int32(len(states))
		index[string(key)] = id
		states = append(states, s)
		parent = append(parent, from)
		via = append(via, action)
		level = append(level, lvl)
		if needGraph {
			edges = append(edges, nil)
		}
		if int(lvl) > res.Depth {
			res.Depth = int(lvl)
		}
		for _, inv := range spec.Invariants {
			if !inv.Holds(s) {
				return id, &Violation{Property: "invariant " + inv.Name, Trace: trace(id, "", nil)}
			}
		}
		return id, nil
	}
	for _, s := range spec.Init() {
		if _, v := add(s, -1, 0, 1); v != nil {
			res.Distinct, res.Violation = len(states), v
			return res, nil
		}
	}
	for head := 0; head < len(states); head++ {
		if maxStates > 0 && len(states) > maxStates {
			return res, fmt.Errorf("models: %s: more than %d states", spec.Name, maxStates)
		}
		s := states[head]
		var viol *Violation
		spec.Next(s, func(action string, t S) {
			if viol != nil {
				return
			}
			aid := idOf(action)
			for _, p := range spec.Actions {
				if !p.Holds(s, t) {
					viol = &Violation{Property: "action property " + p.Name, Trace: trace(int32(head), action, &t)}
					return
				}
			}
			id, v := add(t, int32(head), aid, level[head]+1)
			if v != nil {
				viol = v
				return
			}
			// A step to the same state is a stutter: it neither enables
			// nor takes <<A>>_vars, so fairness ignores it.
			if needGraph && id != int32(head) {
				edges[head] = append(edges[head], edge{to: id, action: aid})
			}
		})
		if viol != nil {
			res.Distinct, res.Violation = len(states), viol
			return res, nil
		}
	}
	res.Distinct = len(states)
	if needGraph {
		fair := make([]bool, len(actionName))
		strong := make([]bool, len(actionName))
		for _, f := range spec.Fair {
			if id, ok := actionID[f]; ok {
				fair[id] = true
			}
		}
		for _, f := range spec.Strong {
			if id, ok := actionID[f]; ok {
				fair[id], strong[id] = true, true
			}
		}
		for _, lt := range spec.Liveness {
			for k := 0; k < lt.Count; k++ {
				if bad := fairLoop(len(states), edges, fair, strong, func(i int) bool { return lt.Pending(states[i], k) }); bad >= 0 {
					res.Violation = &Violation{
						Property: fmt.Sprintf("liveness %s[%d]", lt.Name, k),
						Trace:    trace(int32(bad), "", nil),
					}
					return res, nil
				}
			}
		}
	}
	return res, nil
}

// fairLoop looks for a fair behaviour that stays forever in the states
// where pending holds: a state there where no fair action is enabled (the
// behaviour may stutter), or a non-trivial strongly connected component of
// the pending states in which every weakly fair action is either disabled
// somewhere or taken on some edge, and every strongly fair action is either
// taken or disabled throughout (a component where a strongly fair action is
// enabled in some states but never taken is searched again without those
// states). It returns a state of such a component, or -1.
func fairLoop(n int, edges [][]edge, fair, strong []bool, pending func(int) bool) int {
	enabled := func(i int32, a int) bool {
		for _, e := range edges[i] {
			if int(e.action) == a {
				return true
			}
		}
		return false
	}
	var nodes []int32
	for i := 0; i < n; i++ {
		if !pending(i) {
			continue
		}
		nodes = append(nodes, int32(i))
		someFair := false
		for _, e := range edges[i] {
			if fair[e.action] {
				someFair = true
				break
			}
		}
		if !someFair {
			return i
		}
	}
	member := make([]bool, n)
	var search func(nodes []int32) int
	search = func(nodes []int32) int {
		for _, v := range nodes {
			member[v] = true
		}
		comps := sccs(nodes, edges, member)
		for _, v := range nodes {
			member[v] = false
		}
		for _, comp := range comps {
			for _, v := range comp {
				member[v] = true
			}
			internal := false
			taken := make([]bool, len(fair))
			for _, w := range comp {
				for _, e := range edges[w] {
					if member[e.to] {
						internal = true
						taken[e.action] = true
					}
				}
			}
			ok, refine := internal, -1
			for a := 0; a < len(fair) && ok; a++ {
				if !fair[a] || taken[a] {
					continue
				}
				always, ever := true, false
				for _, w := range comp {
					if enabled(w, a) {
						ever = true
					} else {
						always = false
					}
				}
				if always {
					ok = false // a continuously enabled fair action is never taken
				} else if strong[a] && ever && refine < 0 {
					refine = a
				}
			}
			for _, v := range comp {
				member[v] = false
			}
			if !ok {
				continue
			}
			if refine < 0 {
				return int(comp[0])
			}
			// A fair behaviour must avoid the states where the strongly
			// fair action refine is enabled.
			var sub []int32
			for _, w := range comp {
				if !enabled(w, refine) {
					sub = append(sub, w)
				}
			}
			if bad := search(sub); bad >= 0 {
				return bad
			}
		}
		return -1
	}
	return search(nodes)
}

// sccs returns the strongly connected components of the subgraph induced
// by nodes (member marks them), by Tarjan's algorithm, iteratively.
func sccs(nodes []int32, edges [][]edge, member []bool) [][]int32 {
	idx := map[int32]int32{}
	low := map[int32]int32{}
	onStack := map[int32]bool{}
	var stack []int32
	var out [][]int32
	var counter int32
	type frame struct {
		v    int32
		next int
	}
	for _, root := range nodes {
		if _, seen := idx[root]; seen {
			continue
		}
		call := []frame{{v: root}}
		idx[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.next < len(edges[v]) {
				w := edges[v][f.next].to
				f.next++
				if !member[w] {
					continue
				}
				if _, seen := idx[w]; !seen {
					idx[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{v: w})
				} else if onStack[w] && idx[w] < low[v] {
					low[v] = idx[w]
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				if low[v] < low[u] {
					low[u] = low[v]
				}
			}
			if low[v] != idx[v] {
				continue
			}
			var comp []int32
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			out = append(out, comp)
		}
	}
	return out
}
