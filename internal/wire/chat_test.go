package wire

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// errAny in a table stands for any error.
var errAny = errors.New("any error")

func TestContentUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Content
		err  error // nil: must succeed; errAny: must fail; else errors.Is
	}{
		{"string", `"hello"`, Content{Text: "hello"}, nil},
		{"empty string", `""`, Content{}, nil},
		{"parts", `[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/a.png","detail":"low"}}]`,
			Content{Parts: []ContentPart{{Type: "text", Text: "a"},
				{Type: "image_url", ImageURL: &ImageURL{URL: "https://x/a.png", Detail: "low"}}}}, nil},
		{"empty parts are not nil", `[]`, Content{Parts: []ContentPart{}}, nil},
		{"null", `null`, Content{}, nil},
		{"number", `5`, Content{}, ErrContentType},
		{"object", `{"text":"hi"}`, Content{}, ErrContentType},
		{"bool", `true`, Content{}, ErrContentType},
		{"part not an object", `["hi"]`, Content{}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Content
			err := json.Unmarshal([]byte(tt.in), &got)
			switch {
			case tt.err == nil && err != nil,
				tt.err == errAny && err == nil,
				tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err):
				t.Fatalf("json.Unmarshal(%s) error = %v, want %v", tt.in, err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("json.Unmarshal(%s) mismatch (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

// TestContentInMessage checks that null and absent content read alike, and
// that a bad content value fails the whole message with ErrContentType.
func TestContentInMessage(t *testing.T) {
	for _, in := range []string{`{"role":"user"}`, `{"role":"user","content":null}`} {
		var m ChatMessage
		if err := json.Unmarshal([]byte(in), &m); err != nil || m.Content.Parts != nil || m.Content.Text != "" {
			t.Errorf("json.Unmarshal(%s) = %+v, %v; want empty content", in, m.Content, err)
		}
	}
	var m ChatMessage
	if err := json.Unmarshal([]byte(`{"role":"user","content":5}`), &m); !errors.Is(err, ErrContentType) {
		t.Errorf("json.Unmarshal of numeric content: error %v, want %v", err, ErrContentType)
	}
}

func TestImageURLUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *ImageURL
		wantErr bool
	}{
		{"object", `{"url":"https://x/a.png","detail":"high"}`, &ImageURL{URL: "https://x/a.png", Detail: "high"}, false},
		{"bare string", `"https://x/a.png"`, &ImageURL{URL: "https://x/a.png", Bare: true}, false},
		{"number", `5`, &ImageURL{Bare: true}, false},
		{"null", `null`, nil, false},
		{"detail not a string", `{"url":"u","detail":3}`, nil, true},
		{"url not a string", `{"url":5}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct {
				ImageURL *ImageURL `json:"image_url"`
			}
			err := json.Unmarshal([]byte(`{"image_url":`+tt.in+`}`), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("json.Unmarshal(%s) error = %v, want error: %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(got.ImageURL, tt.want); diff != "" {
				t.Errorf("json.Unmarshal(%s) mismatch (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}
