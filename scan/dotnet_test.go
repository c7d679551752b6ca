package scan

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestDotnetFixtures(t *testing.T) {
	res := Run(context.Background(), gobinOpen(t, "testdata/dotnet/root"), []Analyzer{NewDotnet()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	var got []string
	for _, p := range res.Packages {
		got = append(got, p.Ecosystem+" "+p.Name+" "+p.Version+" "+p.PURL+" "+strings.Join(p.Locations, ","))
	}
	want := []string{
		"NuGet Microsoft.NETCore.App.Runtime.linux-x64 8.0.8 pkg:nuget/Microsoft.NETCore.App.Runtime.linux-x64@8.0.8 opt/worker/Worker.deps.json",
		"NuGet Newtonsoft.Json 13.0.3 pkg:nuget/Newtonsoft.Json@13.0.3 app/MyApp.deps.json,opt/worker/Worker.deps.json",
		"NuGet Serilog 3.1.1 pkg:nuget/Serilog@3.1.1 app/MyApp.deps.json",
		"NuGet Serilog.Sinks.Console 5.0.1 pkg:nuget/Serilog.Sinks.Console@5.0.1 app/MyApp.deps.json",
		"NuGet System.Text.Json 8.0.4 pkg:nuget/System.Text.Json@8.0.4 opt/worker/Worker.deps.json",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseDepsJSON(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []dotnetPackage
		err      string
	}{
		{"library outside the runtime target is not loaded", `{"runtimeTarget":{"name":"net8/linux-x64"},"targets":{"net8":{"A/1.0.0":{}},"net8/linux-x64":{"B/2.0.0":{}}},"libraries":{"A/1.0.0":{"type":"package"},"B/2.0.0":{"type":"package"}}}`,
			[]dotnetPackage{{"B", "2.0.0"}}, ""},
		{"no runtime target: every library", `{"targets":{},"libraries":{"A/1.0.0":{"type":"package"},"P/1.0.0":{"type":"project"},"R/1.0.0":{"type":"reference"}}}`,
			[]dotnetPackage{{"A", "1.0.0"}}, ""},
		{"prerelease and four-part versions", `{"libraries":{"A/1.0.0-beta.2+sha.1":{"type":"package"},"B/4.3.0.1":{"type":"package"}}}`,
			[]dotnetPackage{{"A", "1.0.0-beta.2+sha.1"}, {"B", "4.3.0.1"}}, ""},
		{"runtime target missing", `{"runtimeTarget":{"name":"x"},"targets":{},"libraries":{}}`, nil, `runtime target "x" is not among its targets`},
		{"invalid entries skipped", `{"libraries":{"A/1.0.0":{"type":"package"},"../x/1.0.0":{"type":"package"},"B/latest":{"type":"package"},"C":{"type":"package"}}}`,
			[]dotnetPackage{{"A", "1.0.0"}}, `3 deps.json libraries with an invalid name or version skipped, the first "../x/1.0.0"`},
		{"no libraries", `{"targets":{}}`, nil, `no "libraries"`},
		{"not an object", `[1]`, nil, "parse deps.json"},
		{"bom", "\xef\xbb\xbf" + `{"libraries":{"A/1.0.0":{"type":"package"}}}`, []dotnetPackage{{"A", "1.0.0"}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseDepsJSON([]byte(c.in))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

func FuzzParseDepsJSON(f *testing.F) {
	for _, p := range []string{"testdata/dotnet/root/app/MyApp.deps.json", "testdata/dotnet/root/opt/worker/Worker.deps.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"libraries":{"A/1.0.0":{"type":"runtimepack"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := parseDepsJSON(data)
		for _, p := range pkgs {
			if !validNuGetID(p.Name) || !dotnetVersion.MatchString(p.Version) || strings.Contains(p.Name, "/") {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
