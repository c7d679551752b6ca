package cli

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string // "" = GOGC unset
		want int
	}{
		{"default", "", gcPercent},
		{"GOGC set by the user wins", "200", 200},
		{"GOGC=off set by the user wins", "off", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := debug.SetGCPercent(200) // a value neither the default nor gcPercent
			defer debug.SetGCPercent(prev)
			if tc.env != "" {
				t.Setenv("GOGC", tc.env)
			} else {
				t.Setenv("GOGC", "") // restores the caller's GOGC afterwards
				os.Unsetenv("GOGC")
			}
			tuneGC()
			if got := debug.SetGCPercent(200); got != tc.want {
				t.Fatalf("GC percent = %d, want %d", got, tc.want)
			}
		})
	}
}
