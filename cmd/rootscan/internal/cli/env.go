package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// envAnnotation marks a flag that can be set in the environment; its value lists the variables, the
// ROOTSCAN_<FLAG> one first, then the older names kept for compatibility (CONTAINER_RUNTIME_ENDPOINT, NODE_NAME).
const envAnnotation = "rootscan_env"

// envName is the variable of a flag: ROOTSCAN_ and the flag's name in upper case, dashes as underscores.
func envName(flag string) string {
	return "ROOTSCAN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// withEnv lets the named flags of fs be set from the environment (envName, then the legacy names given in
// legacy[flag]) and says so in their help.
func withEnv(fs *pflag.FlagSet, legacy map[string]string, names ...string) {
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			panic("withEnv: no flag " + n) // a programming error, caught by every test that builds the commands
		}
		vars := []string{envName(n)}
		if l := legacy[n]; l != "" && l != vars[0] {
			vars = append(vars, l)
		}
		_ = fs.SetAnnotation(n, envAnnotation, vars)
		f.Usage += " (env " + strings.Join(vars, ", ") + ")"
	}
}

// legacyEnv are the variables rootscan read before the ROOTSCAN_<FLAG> scheme; they still work.
var legacyEnv = map[string]string{
	"runtime-endpoint": "CONTAINER_RUNTIME_ENDPOINT",
	"node-name":        "NODE_NAME",
	"pod-namespace":    "POD_NAMESPACE",
	"pod-name":         "POD_NAME",
}

// applyEnv sets every env-enabled flag the command line did not set from its variable. The value counts as a
// default: a flag given on the command line wins, and so does the daemon's --config file (it fills what the
// command line did not set, as before).
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		vars := f.Annotations[envAnnotation]
		if err != nil || f.Changed || len(vars) == 0 {
			return
		}
		for _, v := range vars {
			val, ok := os.LookupEnv(v)
			if !ok || val == "" {
				continue
			}
			if serr := f.Value.Set(val); serr != nil {
				err = usageError{fmt.Sprintf("%s=%q (for --%s): %v", v, val, f.Name, serr)}
			}
			return
		}
	})
	return err
}
