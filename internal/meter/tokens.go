package meter

// Token counting for the context-window check.
//
// The vocabularies come from github.com/tiktoken-go/tokenizer, which compiles
// OpenAI's published o200k_base and cl100k_base tables into Go map literals
// (codec/o200k_base_vocab.go, codec/cl100k_base_vocab.go, built once behind a
// sync.Once). Nothing is fetched at run time: the only code in that module
// that touches the network is internal/cmd/vocab.go, the go:generate program
// that wrote those files, which is package main and never linked into us.
//
// The library's own Count runs a backtracking regexp (regexp2) that allocates
// a match object per pre-token, about five allocations and 250 bytes per
// token, at roughly 11–14 MB/s, and its compiled regexp gets two things wrong
// (it drops DEL, and splits "\n   \n" at the first newline). So we take only
// its vocabulary, read once through Decode into a rank table, and do the rest
// here: a scanner that splits text as the encodings' regular expressions do,
// and a byte-pair merge with pooled buffers. Counts match tiktoken's own
// (TestCountMatchesTiktoken) and the library's wherever it reads right
// (TestCountMatchesLibrary, FuzzCountText).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// Tokenizer counts tokens of text for one model family. Get one from
// TokenizerFor; the zero value is not usable. Tokenizers are shared and safe
// for concurrent use; the vocabulary behind one loads on its first count.
type Tokenizer struct {
	enc  *encoding
	name string
	// num/den is the margin applied to text tokens: 1/1 for a real
	// tokenizer, more than 1 for an estimate, so that it over-counts.
	num, den int
	// imageHigh and imageLow are the fixed cost of an image part at high or
	// auto detail and at low detail; imageHigh >= imageLow.
	imageHigh, imageLow int
}

// Chat framing, from OpenAI's cookbook ("How to count tokens with tiktoken",
// num_tokens_from_messages), which matches the API's usage for gpt-3.5-turbo,
// gpt-4 and gpt-4o: every message costs 3 tokens of framing
// (<|start|>role<|message|>…<|end|>, the role itself counted as text), a name
// one more, and every reply is primed with 3 (<|start|>assistant<|message|>).
const (
	tokensPerMessage = 3
	tokensPerName    = 1
	tokensPerReply   = 3
)

// Image costs. OpenAI bills a low-detail image 85 tokens and a high-detail one
// 85 + 170 per 512-pixel tile after scaling to fit 2048×2048 and then 768 on
// the short side: 765 for a square image (4 tiles), up to 1445 for a long
// thin one (8 tiles). We cannot see the image, so we charge the square's 765;
// see the report of weak points. Anthropic documents about width×height/750
// tokens, capped near 1,600 by its resize to about 1.15 megapixels; the
// estimates charge that cap whatever the detail.
const (
	openAIImageHigh   = 765
	openAIImageLow    = 85
	estimateImageCost = 1600
)

// Margins of the estimates, as num/den. Each must over-count, compared with
// the model's own tokenizer, for typical English prose and source code.
//
//   - Claude up to 4.6 (one tokenizer since Claude 3): published comparisons
//     with GPT-4o's o200k_base on the same inputs found 16% more tokens on
//     English articles, 21% on maths and 30% on Python. 1.35 covers code with
//     a little room.
//   - Claude Opus 4.7 and later: Anthropic's migration guide says its new
//     tokenizer yields 1.0–1.35× the tokens of 4.6; independent runs of the
//     count_tokens endpoint measured 1.45× on English prose and 1.47× on
//     technical docs (1.13–1.33× on code). On top of 1.16–1.30× over o200k
//     that is about 1.7, so 1.8. Claude versions we cannot place get it too.
//   - Other models, known or not: we measured the published tokenizers of
//     DeepSeek V3, Qwen3 and Llama 3.1 against o200k_base on 14 files of
//     English prose, C, Go, Python, JavaScript, JSON and YAML (0.6 MB). English
//     stays within 1.05×, and so does most code, but DeepSeek V3 reached 1.30×
//     on two-space-indented JavaScript and Qwen3 1.27× on number-heavy JSON
//     (it splits digits one by one). Hence 1.35.
//   - 32k-vocabulary SentencePiece models (Llama 2, Code Llama, Mistral 7B,
//     Mixtral 8x7B): Llama 2's tokenizer measured 1.11–1.26× on English,
//     1.25–1.31× on code and 1.48× on number-heavy JSON. Hence 1.6.
//
// Non-Latin scripts can exceed any of these (o200k_base is unusually good at
// them); the margins are for English and code, as documented.
var (
	o200kExact      = &Tokenizer{enc: o200k, name: "o200k_base", num: 1, den: 1, imageHigh: openAIImageHigh, imageLow: openAIImageLow}
	cl100kExact     = &Tokenizer{enc: cl100k, name: "cl100k_base", num: 1, den: 1, imageHigh: openAIImageHigh, imageLow: openAIImageLow}
	claudeLegacy    = newEstimate(27, 20) // 1.35
	claudeCurrent   = newEstimate(9, 5)   // 1.8
	otherEstimate   = newEstimate(27, 20) // 1.35
	smallVocabulary = newEstimate(8, 5)   // 1.6
)

func newEstimate(num, den int) *Tokenizer {
	return &Tokenizer{
		enc: o200k, name: fmt.Sprintf("estimate(o200k_base×%g)", float64(num)/float64(den)),
		num: num, den: den, imageHigh: estimateImageCost, imageLow: estimateImageCost,
	}
}

// TokenizerFor picks the counter for a deployment. OpenAI models (provider
// kind "openai" or "mock" and an upstream name like gpt-4o*, gpt-4.1*,
// gpt-4.5*, gpt-5*, o1*, o3*, o4*, chatgpt-* → o200k_base; gpt-4*, gpt-3.5*,
// gpt-35* → cl100k_base) get the real tokenizer. Everything else gets a
// documented estimate, o200k_base times a margin that over-counts: Claude
// (kind "anthropic", or "claude" in the name, as behind a router), small-
// vocabulary open models, and all others. A vendor prefix ("openai/gpt-4o")
// and a fine-tune prefix ("ft:") are ignored; case does not matter.
func TokenizerFor(providerKind, upstreamModel string) *Tokenizer {
	m := strings.ToLower(upstreamModel)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	switch {
	case providerKind == "anthropic" || strings.Contains(m, "claude"):
		if legacyClaude(m) {
			return claudeLegacy
		}
		return claudeCurrent
	case providerKind == "openai" || providerKind == "mock":
		switch {
		case o200kModel(m):
			return o200kExact
		case cl100kModel(m):
			return cl100kExact
		}
	}
	if smallVocabularyModel(m) {
		return smallVocabulary
	}
	return otherEstimate
}

func o200kModel(m string) bool {
	for _, p := range []string{"gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	for _, p := range []string{"o1", "o3", "o4"} {
		if m == p || strings.HasPrefix(m, p+"-") {
			return true
		}
	}
	return false
}

func cl100kModel(m string) bool {
	return strings.HasPrefix(m, "gpt-4") || strings.HasPrefix(m, "gpt-3.5") || strings.HasPrefix(m, "gpt-35")
}

// smallVocabularyModel reports the 32k-vocabulary SentencePiece families.
func smallVocabularyModel(m string) bool {
	for _, p := range []string{"llama-2", "llama2", "mistral-7b", "mixtral-8x7b", "codellama", "code-llama"} {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// legacyClaude reports whether a Claude model predates the tokenizer that came
// with Opus 4.7: Claude 1–3.x and the 4.0–4.6 models, however the name is
// spelled (claude-3-5-sonnet-20240620, claude-sonnet-4-5, claude-opus-4.1,
// anthropic.claude-3-haiku-…-v1:0). Anything it cannot place is not legacy, so
// it gets the larger margin.
func legacyClaude(m string) bool {
	i := strings.Index(m, "claude-")
	if i < 0 {
		return false
	}
	v := m[i+len("claude-"):]
	if strings.HasPrefix(v, "instant") {
		return true
	}
	for _, fam := range []string{"opus-", "sonnet-", "haiku-"} {
		v = strings.TrimPrefix(v, fam)
	}
	major, rest := leadingInt(v)
	switch {
	case major < 0:
		return false
	case major < 4:
		return true
	case major > 4:
		return false
	}
	if rest == "" || rest[0] != '-' && rest[0] != '.' && rest[0] != '@' {
		return rest == ""
	}
	minor, after := leadingInt(rest[1:])
	switch {
	case minor < 0 || rest[0] == '@':
		return true // claude-opus-4@20250514: 4.0
	case len(rest[1:])-len(after) >= 8:
		return true // a date, not a minor version: 4.0
	default:
		return minor <= 6
	}
}

// leadingInt parses the decimal digits at the start of s; -1 if there are none.
func leadingInt(s string) (int, string) {
	n, i := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++ // a long date: keep its length visible to the caller
	}
	if i == 0 {
		return -1, s
	}
	return n, s[i:]
}

// Exact reports whether t is the model's real tokenizer rather than an estimate.
func (t *Tokenizer) Exact() bool { return t.num == t.den }

// Name names the encoding, or the estimate and its margin.
func (t *Tokenizer) Name() string { return t.name }

// scale applies the margin, rounding up.
func (t *Tokenizer) scale(n int) int { return (n*t.num + t.den - 1) / t.den }

// CountChat counts the prompt tokens of an OpenAI chat.completions request
// body: each message's role, name, content (a string, or parts: text and
// refusal parts as text, image parts at a fixed cost), refusal and tool or
// function calls (name and arguments), plus the cookbook's framing (3 per
// message, 1 per name, 3 to prime the reply) and the tools/functions
// definitions, counted as their JSON text. OpenAI renders tool definitions in
// its own, usually shorter, format, so this over-counts them. Tool call ids,
// audio and file parts are not counted. For an estimate the margin applies to
// the text of each message and to the rest, rounding up, but not to images.
//
// The count is additive, which Trim relies on: a message costs the same
// whatever else the body holds, so the count of a body is the count of
// {"messages":[]} plus its tools, plus, for each message m, the count of
// {"messages":[m]} minus that of {"messages":[]}.
//
// It returns an error if the body is not JSON, has no messages array, or has a
// message without a role or with content of the wrong type.
func (t *Tokenizer) CountChat(body []byte) (int, error) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, fmt.Errorf("decode chat request: %w", err)
	}
	if req.Messages == nil {
		return 0, errors.New("chat request has no messages array")
	}
	if err := t.enc.load(); err != nil {
		return 0, err
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)

	fixed := tokensPerReply
	for _, raw := range []json.RawMessage{req.Tools, req.Functions} {
		if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
			fixed += t.enc.count(string(raw), sc)
		}
	}
	n := t.scale(fixed)
	for i := range req.Messages {
		m := &req.Messages[i]
		if m.Role == nil {
			return 0, fmt.Errorf("messages[%d] has no role", i)
		}
		n += t.countMessage(m, sc)
	}
	return n, nil
}

func (t *Tokenizer) countMessage(m *wire.ChatMessage, sc *scratch) int {
	e := t.enc
	text := tokensPerMessage + e.count(*m.Role, sc) + e.count(m.Content.Text, sc) + e.count(m.Refusal, sc)
	images := 0
	for i := range m.Content.Parts {
		p := &m.Content.Parts[i]
		if p.Type == "image_url" {
			images += t.imageCost(p.ImageURL)
			continue
		}
		text += e.count(p.Text, sc) + e.count(p.Refusal, sc)
	}
	if m.Name != "" {
		text += e.count(m.Name, sc) + tokensPerName
	}
	for i := range m.ToolCalls {
		tc := &m.ToolCalls[i]
		text += e.count(tc.Function.Name, sc) + e.count(tc.Function.Arguments, sc) +
			e.count(tc.Custom.Name, sc) + e.count(tc.Custom.Input, sc)
	}
	if fc := m.FunctionCall; fc != nil {
		text += e.count(fc.Name, sc) + e.count(fc.Arguments, sc)
	}
	return t.scale(text) + images
}

// imageCost charges an image part: low detail, or high for auto, high, an
// absent or null image_url, and a bare URL string (an old client's form).
func (t *Tokenizer) imageCost(u *wire.ImageURL) int {
	if u != nil && u.Detail == "low" {
		return t.imageLow
	}
	return t.imageHigh
}

// MaxOutput returns the output tokens the request may produce:
// max_completion_tokens, else max_tokens, else fallback (the model's maximum
// output; 0 if unknown), times n when n > 1. Absent, null, non-positive or
// non-integer values count as not given, and so does everything in a body
// that is not a JSON object. The request's value is not clamped to fallback:
// the upstream rejects one that is too large.
//
// This is what the request may cost. The context window applies to each
// choice separately, so a window check with n > 1 that uses this figure
// over-counts, which errs on the side of rejecting.
func MaxOutput(body []byte, fallback int) int {
	var req struct {
		MaxCompletionTokens json.RawMessage `json:"max_completion_tokens"`
		MaxTokens           json.RawMessage `json:"max_tokens"`
		N                   json.RawMessage `json:"n"`
	}
	if json.Unmarshal(body, &req) != nil {
		return fallback
	}
	out := fallback
	if v, ok := positiveInt(req.MaxCompletionTokens); ok {
		out = v
	} else if v, ok := positiveInt(req.MaxTokens); ok {
		out = v
	}
	if n, ok := positiveInt(req.N); ok && n > 1 {
		if out > math.MaxInt/n {
			return math.MaxInt
		}
		out *= n
	}
	return out
}

func positiveInt(raw json.RawMessage) (int, bool) {
	var v int
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// imageURLLiteral is how every image part that CountChat charges for spells
// its type, unless the body hides letters behind \u escapes.
var imageURLLiteral = []byte("image_url")

// FitsWithoutCounting is the hot-path shortcut: it reports whether a body of
// bodyLen bytes fits the window with maxOutput tokens of output, without
// running the tokenizer. When it says false, count. It is sound only for a
// body that is valid UTF-8 and has no image parts; BodyFitsWithoutCounting
// checks that and charges images, for one more pass over the body at memory
// speed.
//
// The bound: CountChat(body) ≤ ⌈len(body)×margin⌉. Every token of a
// byte-level BPE covers at least one byte, so a string of s bytes has at most
// s tokens; a JSON string's decoded bytes are at most its encoded bytes minus
// the two quotes (escapes only shrink when decoded; it is invalid UTF-8 that
// would grow, into U+FFFD); and the strings CountChat counts are disjoint
// parts of the body, tool definitions included. The framing is paid for by
// syntax that must be there: a message needs {"role":""} (11 bytes) against
// its 3 framing tokens plus the 1 that the margin's rounding can add, a name
// needs "name":"" (9 bytes) against 1, and the reply priming's 3 (rounded up:
// 6 at most) sit inside {"messages":[]} (15 bytes). An image part is the
// exception: some 50 bytes that cost 765 tokens or more.
func (t *Tokenizer) FitsWithoutCounting(bodyLen, maxOutput, window int) bool {
	bound := t.scale(bodyLen)
	return bound <= window && max(maxOutput, 0) <= window-bound
}

// BodyFitsWithoutCounting is FitsWithoutCounting for any body: it declines
// (returns false) for invalid UTF-8, and adds imageHigh tokens for each
// occurrence of "image_url", since an image part must spell its type so (its
// keys may differ in case, as encoding/json matches them so, but not the
// value) unless it escapes letters as \u00XX, which also makes it decline.
// Like the other, it holds only for bodies that CountChat accepts.
func (t *Tokenizer) BodyFitsWithoutCounting(body []byte, maxOutput, window int) bool {
	if !t.FitsWithoutCounting(len(body), maxOutput, window) {
		return false
	}
	if k := bytes.Count(body, imageURLLiteral); k > 0 {
		spare := window - t.scale(len(body)) - max(maxOutput, 0)
		if k > spare/t.imageHigh {
			return false
		}
	}
	return !escapesASCII(body) && utf8.Valid(body)
}

// PromptBound returns an upper bound of CountChat(body) without counting:
// the length bound of FitsWithoutCounting plus imageHigh per "image_url".
// ok is false where BodyFitsWithoutCounting would decline (invalid UTF-8,
// escaped ASCII). Like it, it holds only for bodies CountChat accepts.
func (t *Tokenizer) PromptBound(body []byte) (n int, ok bool) {
	if escapesASCII(body) || !utf8.Valid(body) {
		return 0, false
	}
	return t.scale(len(body)) + bytes.Count(body, imageURLLiteral)*t.imageHigh, true
}

// escapesASCII reports whether body has a \u00XX escape of a printable ASCII
// character (0x20–0x7f), which could spell "image_url" where
// bytes.Count cannot see it. Encoders escape control characters (\u000a,
// \u001b) and non-ASCII text (\u00e9), which pass; Go's HTML-safe \u003c,
// \u003e, \u0026 make the shortcut decline, which only costs a count.
func escapesASCII(body []byte) bool {
	pat := []byte(`\u00`)
	for {
		i := bytes.Index(body, pat)
		if i < 0 || i+4 >= len(body) {
			return false
		}
		if c := body[i+4]; c >= '2' && c <= '7' {
			return true
		}
		body = body[i+4:]
	}
}

// chatRequest is the request as CountChat reads it: only what it counts. The
// messages decode as wire.ChatMessage, which the Anthropic translator reads
// too, so they also hold fields that are not counted (tool call ids, image
// URLs, file data).
type chatRequest struct {
	Messages  []wire.ChatMessage `json:"messages"`
	Tools     json.RawMessage    `json:"tools"`
	Functions json.RawMessage    `json:"functions"`
}

// encoding is one BPE vocabulary and its pre-tokenizer. It loads on first use
// and is read-only afterwards.
type encoding struct {
	name  tokenizer.Encoding
	split func(s string, i int) int // end of the pre-token that starts at i

	once  sync.Once
	ranks map[string]uint32 // token bytes → rank (= id); lower merges first
	err   error
}

var (
	o200k  = &encoding{name: tokenizer.O200kBase, split: splitO200k}
	cl100k = &encoding{name: tokenizer.Cl100kBase, split: splitCl100k}
)

// maxTokenID bounds the ids probed when reading a vocabulary: o200k_base's
// ordinary tokens end at 199997, cl100k_base's at 100255.
const maxTokenID = 1 << 18

func (e *encoding) load() error {
	e.once.Do(func() {
		classesOnce.Do(buildClasses)
		codec, err := tokenizer.Get(e.name)
		if err != nil {
			e.err = fmt.Errorf("load %s: %w", e.name, err)
			return
		}
		ranks := make(map[string]uint32, 200_000)
		id := make([]uint, 1)
		for i := range uint(maxTokenID) {
			id[0] = i
			if s, err := codec.Decode(id); err == nil && s != "" {
				ranks[s] = uint32(i)
			}
		}
		// Every byte must be a token, or a merge could fail to cover a piece.
		for b := range 256 {
			if _, ok := ranks[string([]byte{byte(b)})]; !ok {
				e.err = fmt.Errorf("load %s: byte %#x is not a token", e.name, b)
				return
			}
		}
		e.ranks = ranks
	})
	return e.err
}

// count returns the number of tokens of s. e must be loaded.
func (e *encoding) count(s string, sc *scratch) int {
	n := 0
	for i := 0; i < len(s); {
		j := e.split(s, i)
		if j <= i || j > len(s) {
			j = i + 1 // cannot happen; never loop forever
		}
		piece := s[i:j]
		switch _, ok := e.ranks[piece]; {
		case ok:
			n++
		case len(piece) < mergeHeapMin:
			n += e.mergeScan(piece, sc)
		default:
			n += e.mergeHeap(piece, sc)
		}
		i = j
	}
	return n
}

// scratch holds the merge buffers, pooled so counting does not allocate per
// token or per piece.
type scratch struct {
	parts []bpePart
	nodes []mergeNode
	heap  mergeQueue
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

const noRank = math.MaxUint32

// mergeHeapMin is the piece length from which merging uses a heap (O(n log n))
// instead of a scan (O(n²)); long pieces, such as a run of 100 KB of letters,
// would otherwise take quadratic time.
const mergeHeapMin = 64

type bpePart struct {
	off  int
	rank uint32 // rank of merging this part with the next; noRank if none
}

// mergeScan is tiktoken's byte-pair merge: repeatedly merge the adjacent pair
// of lowest rank, leftmost first, and return how many parts remain.
func (e *encoding) mergeScan(piece string, sc *scratch) int {
	parts := sc.parts[:0]
	for i := 0; i <= len(piece); i++ {
		parts = append(parts, bpePart{off: i, rank: noRank})
	}
	for i := range len(parts) - 2 {
		parts[i].rank = e.pairRank(piece, parts, i)
	}
	for {
		minRank, at := uint32(noRank), 0
		for i := range len(parts) - 2 {
			if parts[i].rank < minRank {
				minRank, at = parts[i].rank, i
			}
		}
		if minRank == noRank {
			break
		}
		parts = append(parts[:at+1], parts[at+2:]...)
		parts[at].rank = e.pairRank(piece, parts, at)
		if at > 0 {
			parts[at-1].rank = e.pairRank(piece, parts, at-1)
		}
	}
	sc.parts = parts[:0]
	return len(parts) - 1
}

func (e *encoding) pairRank(piece string, parts []bpePart, i int) uint32 {
	if i+2 >= len(parts) {
		return noRank
	}
	if r, ok := e.ranks[piece[parts[i].off:parts[i+2].off]]; ok {
		return r
	}
	return noRank
}

// mergeNode is a part boundary in mergeHeap's linked list; rank is that of
// merging the part starting here with the next one.
type mergeNode struct {
	prev, next int32
	rank       uint32
}

// mergeHeap gives the same result as mergeScan in O(n log n): candidates wait
// in a queue ordered by (rank, offset), and stale ones are skipped.
func (e *encoding) mergeHeap(piece string, sc *scratch) int {
	n := int32(len(piece))
	nodes := sc.nodes[:0]
	for i := range n + 1 {
		nodes = append(nodes, mergeNode{prev: i - 1, next: i + 1, rank: noRank})
	}
	nodes[n].next = -1
	q := sc.heap[:0]
	for i := int32(0); i+2 <= n; i++ {
		if r := e.nodeRank(piece, nodes, i); r != noRank {
			nodes[i].rank = r
			q = append(q, mergeCandidate{r, i})
		}
	}
	q.init()
	parts := int(n)
	for len(q) > 0 {
		top := q.pop()
		i := top.off
		if nodes[i].rank != top.rank {
			continue // stale: this boundary was merged away or re-ranked
		}
		j := nodes[i].next
		k := nodes[j].next
		nodes[j].rank = noRank
		nodes[i].next = k
		if k >= 0 {
			nodes[k].prev = i
		}
		parts--
		for _, b := range [2]int32{i, nodes[i].prev} {
			if b < 0 {
				continue
			}
			nodes[b].rank = e.nodeRank(piece, nodes, b)
			if nodes[b].rank != noRank {
				q.push(mergeCandidate{nodes[b].rank, b})
			}
		}
	}
	sc.nodes, sc.heap = nodes[:0], q[:0]
	if cap(nodes) > maxPooledPiece {
		sc.nodes, sc.heap = nil, nil // do not keep a huge piece's buffers
	}
	return parts
}

// maxPooledPiece bounds the merge buffers a pooled scratch keeps.
const maxPooledPiece = 1 << 16

func (e *encoding) nodeRank(piece string, nodes []mergeNode, i int32) uint32 {
	j := nodes[i].next
	if j < 0 {
		return noRank
	}
	k := nodes[j].next
	if k < 0 {
		return noRank
	}
	if r, ok := e.ranks[piece[i:k]]; ok {
		return r
	}
	return noRank
}

type mergeCandidate struct {
	rank uint32
	off  int32
}

// mergeQueue is a binary min-heap by (rank, offset), typed so that pushes do
// not allocate as container/heap's would.
type mergeQueue []mergeCandidate

func (h mergeQueue) less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].off < h[b].off
}

func (h mergeQueue) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *mergeQueue) push(c mergeCandidate) {
	*h = append(*h, c)
	for i := len(*h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		(*h)[i], (*h)[parent] = (*h)[parent], (*h)[i]
		i = parent
	}
}

func (h *mergeQueue) pop() mergeCandidate {
	old := *h
	top, last := old[0], len(old)-1
	old[0] = old[last]
	*h = old[:last]
	h.down(0)
	return top
}

func (h mergeQueue) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && h.less(r, c) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// Character classes used by the pre-tokenizers, as in their regular
// expressions, with Go's unicode tables (which the library's regexp2 uses too).
const (
	clsUpper   uint8 = 1 << iota // \p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}
	clsLower                     // \p{Ll}\p{Lm}\p{Lo}\p{M}
	clsLetter                    // \p{L}
	clsNumber                    // \p{N}
	clsSpace                     // \s
	clsNewline                   // \r \n
)

var (
	classesOnce sync.Once
	asciiClass  [utf8.RuneSelf]uint8
	bmpClass    []uint8 // every rune below 0x10000; 64 KiB
)

func buildClasses() {
	bmpClass = make([]uint8, 0x10000)
	for r := range rune(0x10000) {
		bmpClass[r] = classOf(r)
	}
	copy(asciiClass[:], bmpClass[:utf8.RuneSelf])
}

func classOf(r rune) uint8 {
	var c uint8
	if unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M) {
		c |= clsUpper
	}
	if unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M) {
		c |= clsLower
	}
	if unicode.IsLetter(r) {
		c |= clsLetter
	}
	if unicode.IsNumber(r) {
		c |= clsNumber
	}
	if unicode.IsSpace(r) {
		c |= clsSpace
	}
	if r == '\r' || r == '\n' {
		c |= clsNewline
	}
	return c
}

// charAt returns the class and width of the character at s[i]. An invalid
// byte reads as U+FFFD, one byte wide.
func charAt(s string, i int) (uint8, int) {
	if b := s[i]; b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r < 0x10000 {
		return bmpClass[r], n
	}
	return classOf(r), n
}

// splitO200k returns the end of the pre-token at s[i], as the first match of
// o200k_base's pattern, tried in order with backtracking:
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	\p{N}{1,3}
//	 ?[^\s\p{L}\p{N}]+[\r\n/]*
//	\s*[\r\n]+
//	\s+(?!\S)
//	\s+
//
// The library's compiled regexp drops U+007F (DEL) entirely, a bug in its
// ASCII bitmap; we keep it, as tiktoken does, as punctuation.
func splitO200k(s string, i int) int {
	c, n := charAt(s, i)
	prefix := c&(clsLetter|clsNumber|clsNewline) == 0 && i+n < len(s)
	if prefix {
		if j := lowerWord(s, i+n); j > 0 {
			return j
		}
	}
	if j := lowerWord(s, i); j > 0 {
		return j
	}
	if prefix {
		if j := upperWord(s, i+n); j > 0 {
			return j
		}
	}
	if j := upperWord(s, i); j > 0 {
		return j
	}
	if c&clsNumber != 0 {
		return numbers(s, i)
	}
	if j := punct(s, i, true); j > 0 {
		return j
	}
	return spaces(s, i)
}

// splitCl100k is splitO200k for cl100k_base's pattern:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)
//	[^\r\n\p{L}\p{N}]?\p{L}+
//	\p{N}{1,3}
//	 ?[^\s\p{L}\p{N}]+[\r\n]*
//	\s*[\r\n]+
//	\s+(?!\S)
//	\s+
func splitCl100k(s string, i int) int {
	if s[i] == '\'' {
		if j := contraction(s, i); j > i {
			return j
		}
	}
	c, n := charAt(s, i)
	if c&(clsLetter|clsNumber|clsNewline) == 0 && i+n < len(s) {
		if j := letters(s, i+n); j > i+n {
			return j
		}
	}
	switch {
	case c&clsLetter != 0:
		return letters(s, i)
	case c&clsNumber != 0:
		return numbers(s, i)
	}
	if j := punct(s, i, false); j > 0 {
		return j
	}
	return spaces(s, i)
}

// lowerWord matches [upper]*[lower]+ and an optional contraction at s[q],
// backtracking as the regexp does: the lower run starts at the last place it
// can, the character after the upper run if that is lower (an Ll), else the
// last character of the upper run that is also lower. 0 if none.
func lowerWord(s string, q int) int {
	start := -1
	for j := q; j < len(s); {
		c, n := charAt(s, j)
		if c&clsLower != 0 {
			start = j
		}
		if c&clsUpper == 0 {
			break
		}
		j += n
	}
	if start < 0 {
		return 0
	}
	e := start
	for e < len(s) {
		c, n := charAt(s, e)
		if c&clsLower == 0 {
			break
		}
		e += n
	}
	return contraction(s, e)
}

// upperWord matches [upper]+[lower]* and an optional contraction; 0 if none.
func upperWord(s string, q int) int {
	j := q
	for j < len(s) {
		c, n := charAt(s, j)
		if c&clsUpper == 0 {
			break
		}
		j += n
	}
	if j == q {
		return 0
	}
	for j < len(s) {
		c, n := charAt(s, j)
		if c&clsLower == 0 {
			break
		}
		j += n
	}
	return contraction(s, j)
}

// contraction extends a match ending at e over (?i:'s|'t|'re|'ve|'m|'ll|'d).
// Case folding lets U+017F (ſ, long s) stand for s, as in the regexp.
func contraction(s string, e int) int {
	if e+1 >= len(s) || s[e] != '\'' {
		return e
	}
	switch s[e+1] | 0x20 {
	case 's', 't', 'm', 'd':
		return e + 2
	case 'r', 'v':
		if e+2 < len(s) && s[e+2]|0x20 == 'e' {
			return e + 3
		}
	case 'l':
		if e+2 < len(s) && s[e+2]|0x20 == 'l' {
			return e + 3
		}
	}
	if strings.HasPrefix(s[e+1:], "ſ") {
		return e + 1 + len("ſ")
	}
	return e
}

func letters(s string, q int) int {
	for q < len(s) {
		c, n := charAt(s, q)
		if c&clsLetter == 0 {
			break
		}
		q += n
	}
	return q
}

// numbers matches \p{N}{1,3}; s[i] is a number.
func numbers(s string, i int) int {
	j := i
	for k := 0; k < 3 && j < len(s); k++ {
		c, n := charAt(s, j)
		if c&clsNumber == 0 {
			break
		}
		j += n
	}
	return j
}

// punct matches " ?[^\s\p{L}\p{N}]+[\r\n]*", with "/" in the last class when
// slash is set (o200k_base); 0 if none.
func punct(s string, i int, slash bool) int {
	j := i
	if s[j] == ' ' {
		j++
	}
	start := j
	for j < len(s) {
		c, n := charAt(s, j)
		if c&(clsSpace|clsLetter|clsNumber) != 0 {
			break
		}
		j += n
	}
	if j == start {
		return 0
	}
	for j < len(s) && (s[j] == '\r' || s[j] == '\n' || slash && s[j] == '/') {
		j++
	}
	return j
}

// spaces matches the three whitespace alternatives at s[i]:
// \s*[\r\n]+ ends after the run's last newline; else \s+(?!\S) leaves the
// last space of a run for the word that follows; else \s+.
func spaces(s string, i int) int {
	j, lastNL, last := i, -1, i
	for j < len(s) {
		c, n := charAt(s, j)
		if c&clsSpace == 0 {
			break
		}
		if c&clsNewline != 0 {
			lastNL = j
		}
		last = j
		j += n
	}
	switch {
	case j == i:
		_, n := charAt(s, i) // matched by no alternative; cannot happen
		return i + n
	case lastNL >= 0:
		return lastNL + 1
	case j == len(s) || last == i:
		return j
	}
	return last
}
