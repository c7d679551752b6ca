//go:build !linux && !darwin

package fsaccess

func statOf(any) (Stat, bool) { return Stat{}, false }
