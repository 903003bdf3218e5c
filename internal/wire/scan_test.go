package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// walk lists what Members hands out, as gjson's ForEach would (key, raw
// value, value offset), or reports that it stopped short.
func walk(b []byte) (string, bool) {
	var out strings.Builder
	ok := Members(b, func(k, v []byte, at int) bool {
		fmt.Fprintf(&out, "%s=%s@%d;", k, v, at)
		return true
	})
	return out.String(), ok
}

// gjsonWalk is walk by gjson, the reference, or false where walk must stop
// short: not an object, or a key with an escape.
func gjsonWalk(b []byte) (string, bool) {
	r := gjson.ParseBytes(b)
	if !r.IsObject() {
		return "", false
	}
	var out strings.Builder
	ok := true
	r.ForEach(func(k, v gjson.Result) bool {
		if strings.Contains(k.Raw, `\`) {
			ok = false
			return false
		}
		fmt.Fprintf(&out, "%s=%s@%d;", k.Str, v.Raw, v.Index)
		return true
	})
	return out.String(), ok
}

func TestMembers(t *testing.T) {
	for _, doc := range []string{
		`{}`, `[]`, ` { } `, `[ ]`,
		`{"a":1,"b":"x","c":[1,{"d":"}]"}],"e":{"f":null},"g":true,"h":false,"i":-1.5e-3}`,
		` {  "a" :	1 ,
		"b":"\"}" } `,
		`[1,"a",{"b":[2]},[[]],null,true,false,-0.5]`,
		`{"k\"ey":1}`, `{"a":1,"k\u0065y":2}`,
		`"str"`, `12`, `null`, `true`,
	} {
		want, wantOK := gjsonWalk([]byte(doc))
		got, ok := walk([]byte(doc))
		if ok != wantOK || (ok && got != want) {
			t.Errorf("%s: walked %q (%v), gjson %q (%v)", doc, got, ok, want, wantOK)
		}
	}
}

// fn returning false stops the walk, which then reports false.
func TestMembersStop(t *testing.T) {
	n := 0
	if Members([]byte(`{"a":1,"b":2,"c":3}`), func(k, _ []byte, _ int) bool { n++; return string(k) != "b" }) || n != 2 {
		t.Fatalf("stopped after %d members, want 2 and false", n)
	}
}

// FuzzMembers: on any valid JSON, Members hands out what gjson does, or
// stops short exactly where it must.
func FuzzMembers(f *testing.F) {
	f.Add(`{"a":[1,{"b":"}"}],"c":"\\\"","d":{}}`)
	f.Add(`[{"role":"user","content":"hi"},null]`)
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return
		}
		want, wantOK := gjsonWalk([]byte(doc))
		got, ok := walk([]byte(doc))
		if ok != wantOK || (ok && got != want) {
			t.Errorf("%s: walked %q (%v), gjson %q (%v)", doc, got, ok, want, wantOK)
		}
	})
}
