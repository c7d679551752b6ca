package inspec

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/antchfx/xmlquery"
	"github.com/antchfx/xpath"
)

// xml is InSpec's xml resource: its(['//a/@b']) evaluates the XPath on the document and gives an array, an
// attribute as its value and an element as its text (its first text child, nil without one), as REXML does in
// InSpec. A text() node gives its text too, where InSpec's REXML path raises "Unknown XML object". XPath is
// antchfx/xpath, a complete XPath 1.0 over antchfx/xmlquery's tree (built with encoding/xml); the document is
// what the target's content limit lets be read, so the tree is bounded by that many bytes.

// xmlRes is one parsed document.
type xmlRes struct {
	name    string
	content string
	doc     *xmlquery.Node
}

func newXMLResource(ev *evaluator, args []any) (any, error) {
	name, content, err := documentContent(ev, "XML", args)
	if err != nil {
		return nil, err
	}
	doc, err := parseXML(content)
	if err != nil {
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "Unable to parse XML: %v", err)
	}
	return &xmlRes{name: name, content: content, doc: doc}, nil
}

// maxXMLDepth and maxXMLTokens bound the tree before it is built: configuration files nest a few levels and
// hold a few thousand nodes, while 4 MiB of nested tags cost the tree builder half a gigabyte and seconds.
const (
	maxXMLDepth  = 256
	maxXMLTokens = 200_000
)

// parseXML builds the document tree once its shape is within the bounds; encoding/xml does not expand external
// entities or fetch DTDs.
func parseXML(content string) (*xmlquery.Node, error) {
	if err := xmlShape(content); err != nil {
		return nil, err
	}
	return xmlquery.Parse(strings.NewReader(content))
}

// xmlShape counts the document's tokens and nesting with encoding/xml's tokenizer, which keeps no tree.
func xmlShape(content string) error {
	d := xml.NewDecoder(strings.NewReader(content))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil } // the tags are ASCII
	depth, tokens := 0, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if tokens++; tokens > maxXMLTokens {
			return fmt.Errorf("more than %d XML nodes", maxXMLTokens)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth++; depth > maxXMLDepth {
				return fmt.Errorf("XML nested deeper than %d elements", maxXMLDepth)
			}
		case xml.EndElement:
			depth--
		}
	}
}

func (x *xmlRes) String() string { return x.name }

func (x *xmlRes) method(_ *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	switch name {
	case "content", "raw_content":
		return x.content, true, nil
	case "to_s":
		return x.name, true, nil
	case "[]":
		if len(args) == 0 {
			return nil, true, rbErr("ArgumentError", "xml[] needs an XPath")
		}
		v, err := xpathValues(x.doc, toS(args[0]))
		return v, true, err
	}
	if len(args) > 0 {
		return nil, false, nil
	}
	v, err := xpathValues(x.doc, name)
	return v, true, err
}

// xpathValues evaluates expr as InSpec's xml resource does: always an array, of strings (attributes, element
// texts, or nil for an element without text), or the one number, string or boolean an XPath function gives.
func xpathValues(doc *xmlquery.Node, expr string) (*array, error) {
	e, err := xpath.Compile(expr)
	if err != nil {
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "XPath %q: %v", expr, err)
	}
	switch v := e.Evaluate(xmlquery.CreateXPathNavigator(doc)).(type) {
	case *xpath.NodeIterator:
		return xpathNodes(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return newArray([]any{int64(v)}), nil // REXML's count() is an Integer
		}
		return newArray([]any{v}), nil
	case string, bool:
		return newArray([]any{v}), nil
	default:
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "Unknown XML object received (%T)", v)
	}
}

func xpathNodes(it *xpath.NodeIterator) (*array, error) {
	out := newArray(nil)
	for it.MoveNext() {
		nav, ok := it.Current().(*xmlquery.NodeNavigator)
		if !ok {
			return nil, rbErr("Inspec::Exceptions::ResourceFailed", "Unknown XML object received (%T)", it.Current())
		}
		switch nav.NodeType() {
		case xpath.AttributeNode:
			out.v = append(out.v, nav.Value())
		case xpath.ElementNode:
			out.v = append(out.v, elementText(nav.Current()))
		case xpath.TextNode:
			out.v = append(out.v, nav.Current().Data)
		default:
			return nil, rbErr("Inspec::Exceptions::ResourceFailed", "Unknown XML object received (%s)",
				xmlNodeKind(nav.NodeType()))
		}
	}
	return out, nil
}

// elementText is REXML's Element#text: the first text or CDATA child, nil when there is none.
func elementText(n *xmlquery.Node) any {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == xmlquery.TextNode || c.Type == xmlquery.CharDataNode {
			return c.Data
		}
	}
	return nil
}

func xmlNodeKind(t xpath.NodeType) string {
	switch t {
	case xpath.CommentNode:
		return "REXML::Comment"
	case xpath.RootNode:
		return "REXML::Document"
	}
	return fmt.Sprintf("node type %d", t)
}
