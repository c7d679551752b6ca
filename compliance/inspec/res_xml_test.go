package inspec

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// evalOn evaluates one control file against a root of the given files (the other resource tests share evalFiles).
func evalOn(t testing.TB, files map[string]string, modes map[string]os.FileMode, controls string) []report.ControlResult {
	t.Helper()
	return evalOnRoot(t, evalRoot(t, files, modes), controls)
}

func evalOnRoot(t testing.TB, root *fsaccess.Root, controls string) []report.ControlResult {
	t.Helper()
	p, err := FromFiles("test", map[string][]byte{"inspec.yml": []byte("name: t\n"), "controls/c.rb": []byte(controls)}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tg := compliance.NewTarget(ctx, root, report.Target{Kind: "dir"}, nil, &report.Result{}, compliance.Limits{}, nil)
	return NewRunner(p, nil, EvalLimits{}).Evaluate(ctx, tg)
}

const tomcatServer = `<?xml version="1.0" encoding="UTF-8"?>
<Server port="8005" shutdown="SHUTDOWN">
  <!-- a comment -->
  <Service name="Catalina">
    <Connector port="8080" protocol="HTTP/1.1" server="Apache"/>
    <Connector port="8443" protocol="HTTP/1.1" SSLEnabled="true" secure="true"/>
    <Engine name="Catalina" defaultHost="localhost"><Host name="localhost">web<![CDATA[apps]]></Host></Engine>
  </Service>
  <name.with.a.period>so_many_dots</name.with.a.period>
  <empty/>
</Server>
`

func TestEvaluateXML(t *testing.T) {
	got := evalOn(t, map[string]string{"etc/tomcat/server.xml": tomcatServer, "etc/bad.xml": "<a><b></a>"}, nil, `
control 'attrs' do
  describe xml('/etc/tomcat/server.xml') do
    its(['Server/@shutdown']) { should cmp 'SHUTDOWN' }
    its(['//Connector/@port']) { should eq ['8080', '8443'] }
    its(['//Connector[@SSLEnabled="true"]/@secure']) { should eq ['true'] }
    its(['//Connector/@nosuch']) { should be_empty }
    its('Server/Service/@name') { should eq ['Catalina'] }
  end
end
control 'texts' do
  describe xml('/etc/tomcat/server.xml') do
    its(['Server/name.with.a.period']) { should cmp 'so_many_dots' }
    its(['//Host']) { should eq ['web'] }
    its(['//Host/text()']) { should eq ['web', 'apps'] }
    its(['//empty']) { should eq [nil] }
    its(['count(//Connector)']) { should eq [2] }
    its(['boolean(//Engine)']) { should eq [true] }
  end
end
control 'content' do
  describe xml(content: '<a><b x="1">t</b></a>') do
    its(['a/b/@x']) { should eq ['1'] }
    its(['/a/b']) { should eq ['t'] }
  end
end
control 'missing' do
  describe xml('/etc/nosuch.xml') do
    its(['a']) { should eq [] }
  end
end
control 'broken' do
  describe xml('/etc/bad.xml') do
    its(['a']) { should eq [] }
  end
end
control 'bad-xpath' do
  describe xml('/etc/tomcat/server.xml') do
    its(['//[']) { should eq [] }
  end
end
control 'deep' do
  describe xml(content: '`+strings.Repeat("<a>", 300)+strings.Repeat("</a>", 300)+`') do
    its(['//a/@x']) { should eq [] }
  end
end
control 'comment' do
  describe xml('/etc/tomcat/server.xml') do
    its(['//comment()']) { should eq [] }
  end
end
`)
	checkResults(t, got, map[string]want{
		"attrs":     {report.ControlPassed, ""},
		"texts":     {report.ControlPassed, ""},
		"content":   {report.ControlPassed, ""},
		"missing":   {report.ControlSkipped, "Can't find file: /etc/nosuch.xml"},
		"broken":    {report.ControlError, "Unable to parse XML"},
		"bad-xpath": {report.ControlError, "XPath"},
		"deep":      {report.ControlError, "XML nested deeper than 256 elements"},
		"comment":   {report.ControlError, "Unknown XML object received (REXML::Comment)"},
	})
}

// FuzzXMLValues parses arbitrary documents and evaluates XPaths of the forms profiles use on them: no panic, no
// hang (the document is at most what the content limit reads; here the fuzzer's input).
func FuzzXMLValues(f *testing.F) {
	f.Add(tomcatServer, "//Connector/@port")
	f.Add("<a><b>x</b><b><![CDATA[y]]></b></a>", "//b/text()")
	f.Add("<?xml version='1.0' encoding='ISO-8859-1'?><a x='\xe9'/>", "count(//a)")
	f.Add("<!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><a>&e;</a>", "/a")
	f.Add("<a xmlns:p='u'><p:b p:c='1'/><?pi x?></a>", "//*")
	f.Add(strings.Repeat("<a>", 500)+strings.Repeat("</a>", 500), "//a[last()]")
	f.Fuzz(func(t *testing.T, doc, expr string) {
		if len(doc) > 8<<10 || len(expr) > 64 {
			return
		}
		d, err := parseXML(doc)
		if err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = xpathValues(d, expr)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("xpath %q ran past 10s", expr)
		}
	})
}
