//go:build !tcpmutation

package tcp

// mutated is false in production builds: a constant the compiler folds, so
// every `if mutated(...)` branch is removed.
func mutated(Mutation) bool { return false }
