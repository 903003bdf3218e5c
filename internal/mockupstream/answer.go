package mockupstream

import (
	"encoding/json"
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// replyTokens is the length of a default text answer, in tokens, when
// Options.ReplyTokens does not set another.
const replyTokens = 12

// echoWords is how many words of the last user message the answer repeats.
const echoWords = 5

// vocabulary fills text answers after the echoed words.
var vocabulary = []string{
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
	"quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
	"yankee", "zulu", "amber", "cobalt", "ember", "indigo", "jade", "onyx",
}

// turn is what either API asked for, reduced to what decides the answer.
type turn struct {
	promptTokens int      // estimate of all input tokens
	lastUser     string   // text of the last user message
	toolResults  []string // set when the last message returns tool results
	tool         *tool    // the tool to call; nil answers with text
	maxTokens    int      // cap on output tokens; 0 = none
	stops        []string // stop sequences
	replyTokens  int      // length of a text answer; 0 = the default replyTokens
}

// tool is a callable tool of the request.
type tool struct {
	name   string
	schema json.RawMessage
}

// finish is why an answer ended.
type finish int

const (
	finishNatural finish = iota // end of the text
	finishLength                // hit maxTokens
	finishStop                  // matched a stop sequence
	finishTool                  // called a tool
)

// answer is one generated choice.
type answer struct {
	tokens   []string // text tokens, each with its leading whitespace
	finish   finish
	stopSeq  string // the stop sequence matched, for finishStop
	toolName string // for finishTool
	toolArgs string // JSON arguments, for finishTool
}

// outputTokens is the completion token count of a.
func (a answer) outputTokens() int {
	if a.finish == finishTool {
		return ceilDiv(utf8.RuneCountInString(a.toolName)+utf8.RuneCountInString(a.toolArgs), 4)
	}
	return len(a.tokens)
}

// text is the answer's whole text.
func (a answer) text() string {
	return strings.Join(a.tokens, "")
}

// answerFor returns choice number choice of the deterministic answer to t.
func answerFor(t turn, choice int) answer {
	if t.toolResults == nil && t.tool != nil {
		return answer{finish: finishTool, toolName: t.tool.name, toolArgs: argsFor(t.tool.schema)}
	}
	var full string
	if t.toolResults != nil {
		full = "The tool returned: " + strings.Join(t.toolResults, "; ")
	} else {
		full = replyText(t.lastUser, choice, t.replyTokens)
	}
	return cut(full, t.maxTokens, t.stops)
}

// cut ends the text full as a model would: at the first stop sequence that
// fits within maxTokens tokens, else after maxTokens tokens.
func cut(full string, maxTokens int, stops []string) answer {
	tokens := splitTokens(full)
	capped := tokens
	if maxTokens > 0 && len(tokens) > maxTokens {
		capped = tokens[:maxTokens]
	}
	within := len(strings.Join(capped, ""))
	at, seq := -1, ""
	for _, s := range stops {
		if i := strings.Index(full, s); s != "" && i >= 0 && i+len(s) <= within && (at < 0 || i < at) {
			at, seq = i, s
		}
	}
	switch {
	case at >= 0:
		return answer{tokens: splitTokens(full[:at]), finish: finishStop, stopSeq: seq}
	case len(capped) < len(tokens):
		return answer{tokens: capped, finish: finishLength}
	}
	return answer{tokens: tokens, finish: finishNatural}
}

// replyText is the text answer to a last user message: "Mock reply to:",
// its first words, then words drawn from a hash of the message (and of the
// choice number, so that choices differ), n tokens in all (replyTokens when
// n <= 0; never fewer than the echoed words).
func replyText(lastUser string, choice, n int) string {
	if n <= 0 {
		n = replyTokens
	}
	words := strings.Fields(lastUser)
	if len(words) > echoWords {
		words = words[:echoWords]
	}
	parts := append([]string{"Mock", "reply", "to:"}, words...)
	h := fnv.New64a()
	_, _ = h.Write([]byte(lastUser))
	_, _ = h.Write([]byte{byte(choice), byte(choice >> 8)})
	seed := h.Sum64()
	for len(parts) < n {
		seed = splitmix(seed)
		parts = append(parts, vocabulary[seed%uint64(len(vocabulary))])
	}
	return strings.Join(parts, " ") + "."
}

// splitmix advances a splitmix64 generator.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	z := x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// splitTokens splits s into tokens that each hold a run of whitespace and
// the word after it, so that joining them gives s back.
func splitTokens(s string) []string {
	var tokens []string
	start, inWord := 0, false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if space && inWord {
			tokens = append(tokens, s[start:i])
			start = i
		}
		inWord = !space
	}
	if start < len(s) {
		tokens = append(tokens, s[start:])
	}
	return tokens
}

// argsFor returns deterministic tool arguments for a JSON schema: each
// declared property gets its first enum value, else "mock" for a string,
// 1 for a number, true for a boolean, [] for an array, and an object built
// the same way; "{}" when there are none.
func argsFor(schema json.RawMessage) string {
	args, err := json.Marshal(valueFor(schema, 0))
	if err != nil {
		return "{}"
	}
	if args[0] != '{' {
		return "{}"
	}
	return string(args)
}

// maxSchemaDepth bounds the recursion into nested object schemas.
const maxSchemaDepth = 4

// valueFor returns the deterministic value for one (sub)schema.
func valueFor(schema json.RawMessage, depth int) any {
	var s struct {
		Type       json.RawMessage            `json:"type"`
		Enum       []json.RawMessage          `json:"enum"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	_ = json.Unmarshal(schema, &s) // an unreadable schema is the empty schema
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	switch schemaType(s.Type, depth) {
	case "number", "integer":
		return 1
	case "boolean":
		return true
	case "array":
		return []any{}
	case "null":
		return nil
	case "object":
		obj := map[string]any{}
		if depth < maxSchemaDepth {
			for name, sub := range s.Properties {
				obj[name] = valueFor(sub, depth+1)
			}
		}
		return obj
	}
	return "mock"
}

// schemaType reads a schema's "type", a string or an array of them (the
// first that is not "null" wins). The top level defaults to "object".
func schemaType(raw json.RawMessage, depth int) string {
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return one
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	for _, t := range many {
		if t != "null" {
			return t
		}
	}
	if depth == 0 {
		return "object"
	}
	return "string"
}

// splitArgs cuts tool arguments into 2 or more pieces (3 when long enough)
// at rune boundaries, as a model streams them.
func splitArgs(args string) []string {
	runes := []rune(args)
	n := 3
	if len(runes) < n {
		n = len(runes)
	}
	if n < 2 {
		return []string{args, ""}
	}
	pieces := make([]string, 0, n)
	for i := range n {
		pieces = append(pieces, string(runes[i*len(runes)/n:(i+1)*len(runes)/n]))
	}
	return pieces
}

// estimateTokens is the prompt token estimate: a token per 4 characters of
// content, rounded up, plus 4 per message.
func estimateTokens(chars, messages int) int {
	return ceilDiv(chars, 4) + 4*messages
}

func ceilDiv(a, b int) int {
	return (a + b - 1) / b
}
