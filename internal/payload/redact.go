package payload

import (
	"bytes"
	"encoding/json"
	"regexp"

	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// Mask replaces every redacted match.
const Mask = "[REDACTED]"

// A finder returns the spans of src to redact, in increasing order and not
// overlapping, already clear of JSON escapes (see clearOfEscapes).
type finder func(src []byte) [][2]int

// rule is one redaction pattern.
type rule struct {
	find finder
	// cards: a span written as a bare JSON number gets the quoted mask.
	cards bool
}

// builtinRules are always on. Keys come first so that nothing inside a key
// is taken for a card number or an e-mail address.
//
// None of them runs a regexp over the whole body: without a literal prefix
// Go's regexps scan at a few MB/s, which would make the writer the
// bottleneck. Keys are found by their literal prefix and matched from
// there, e-mail addresses from their "@", card numbers by a scan for digit
// runs.
var builtinRules = []rule{
	// OpenAI (sk-…, sk-proj-…) and Anthropic (sk-ant-…) keys.
	{find: keyFinder("sk-", false, `[A-Za-z0-9_-]{16,}`)},
	// Tollgate virtual keys: "tg-" and 43 URL-safe base64 characters; 20 is
	// enough to tell one from a hyphenated word.
	{find: keyFinder(tenant.KeyPrefix, false, `[A-Za-z0-9_-]{20,}`)},
	// AWS access key ids (long-term and temporary).
	{find: keyFinder("AKIA", false, `[0-9A-Z]{16}`)},
	{find: keyFinder("ASIA", false, `[0-9A-Z]{16}`)},
	// GitHub tokens: ghp_ and its siblings, and fine-grained tokens.
	{find: keyFinder("gh", false, `[pousr]_[A-Za-z0-9]{30,}`)},
	{find: keyFinder("github_pat_", false, `[A-Za-z0-9_]{30,}`)},
	// Slack tokens.
	{find: keyFinder("xox", false, `[abposr]-[A-Za-z0-9-]{10,}`)},
	// Bearer tokens of 16 characters or more, so that "bearer of bad news"
	// is left alone; "Bearer " itself is kept.
	{find: keyFinder("bearer", true, `\s+()[A-Za-z0-9._~+/-]{16,}=*`)},
	// E-mail addresses.
	{find: findEmails},
	// Payment card numbers.
	{find: findCards, cards: true},
}

// redactor replaces secrets and personal data in a body. It is safe for
// concurrent use (it holds only compiled regexps) but runs in the writer
// goroutine, off the request path.
type redactor struct {
	rules []rule
}

// newRedactor returns the built-in rules followed by extra.
func newRedactor(extra []*regexp.Regexp) *redactor {
	r := &redactor{rules: append([]rule(nil), builtinRules...)}
	for _, re := range extra {
		r.rules = append(r.rules, rule{find: regexpFinder(re)})
	}
	return r
}

// redact returns b with every match replaced by Mask. It never changes b;
// when nothing matches it returns b itself. Matches are kept clear of JSON
// escape sequences, and a card number that is a bare JSON number becomes a
// string, so that a JSON body stays valid JSON (a configured pattern can
// still break it: it may match anything).
func (r *redactor) redact(b []byte) []byte {
	for i := range r.rules {
		b = r.rules[i].apply(b)
	}
	return b
}

// apply runs one rule over src.
func (ru *rule) apply(src []byte) []byte {
	spans := ru.find(src)
	if len(spans) == 0 {
		return src
	}
	out := make([]byte, 0, len(src))
	var quotes *quoteState
	if ru.cards {
		quotes = &quoteState{json: looksJSON(src)}
	}
	last := 0
	for _, sp := range spans {
		mask := Mask
		if quotes != nil {
			if mask = quotes.maskAt(src, sp[0]); mask != Mask && sp[0] > last && src[sp[0]-1] == '-' {
				sp[0]-- // a negative JSON number: the sign goes too
			}
		}
		out = append(out, src[last:sp[0]]...)
		out = append(out, mask...)
		last = sp[1]
	}
	return append(out, src[last:]...)
}

// keyWindow is how much text after a key's prefix its pattern is run on.
// Go's regexps clear state in proportion to their input, so a whole body
// there would make every candidate cost as much as the body. A match that
// reaches the end of the window goes on over token bytes (isTokenByte):
// tokens longer than the window are rare, but must not leak their tails.
const keyWindow = 512

// keyFinder finds secrets that start with prefix at the start of a word
// (see startsWord) and go on with rest, an RE2 pattern matched right after
// the prefix. If rest has an empty group "()", what comes before it is
// kept: "Bearer " of a bearer token. fold makes the prefix, which is lower
// case, case-insensitive.
func keyFinder(prefix string, fold bool, rest string) finder {
	re := regexp.MustCompile(`^(?:` + rest + `)`)
	keep := re.NumSubexp() > 0
	return func(src []byte) [][2]int {
		var spans [][2]int
		for pos := 0; pos < len(src); {
			i := indexFrom(src, pos, prefix, fold)
			if i < 0 {
				break
			}
			pos = i + 1
			if !startsWord(src, i) {
				continue // "task-…" is not a key
			}
			after := i + len(prefix)
			window := src[after:min(len(src), after+keyWindow)]
			m := re.FindSubmatchIndex(window)
			if m == nil {
				continue
			}
			s, e := i, after+m[1]
			if keep {
				s = after + m[2]
			}
			if m[1] == len(window) {
				for e < len(src) && isTokenByte(src[e]) {
					e++
				}
			}
			if s, e = clearOfEscapes(src, s, e); s < e {
				spans = append(spans, [2]int{s, e})
				pos = e
			}
		}
		return spans
	}
}

// indexFrom is the index of sub in src at or after pos, or -1; with fold,
// ASCII case is ignored (sub is lower case).
func indexFrom(src []byte, pos int, sub string, fold bool) int {
	if !fold {
		if i := bytes.Index(src[pos:], []byte(sub)); i >= 0 {
			return pos + i
		}
		return -1
	}
	firsts := string([]byte{sub[0], sub[0] - 'a' + 'A'})
	for pos+len(sub) <= len(src) {
		i := bytes.IndexAny(src[pos:], firsts)
		if i < 0 {
			return -1
		}
		i += pos
		if i+len(sub) <= len(src) && bytes.EqualFold(src[i:i+len(sub)], []byte(sub)) {
			return i
		}
		pos = i + 1
	}
	return -1
}

// emailDomain is what follows the "@" of an e-mail address; it is run on
// at most maxDomain bytes (RFC 1035 allows 253).
var emailDomain = regexp.MustCompile(`^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)

const maxDomain = 256

// maxLocalPart bounds the scan back from an "@" (RFC 5321 allows 64), so
// that a long run of "@"s costs linear time.
const maxLocalPart = 256

// findEmails finds local@domain around each "@".
func findEmails(src []byte) [][2]int {
	var spans [][2]int
	for pos := 0; pos < len(src); {
		at := bytes.IndexByte(src[pos:], '@')
		if at < 0 {
			break
		}
		at += pos
		s := at
		for s > pos && at-s < maxLocalPart && isLocalByte(src[s-1]) {
			s--
		}
		pos = at + 1
		m := emailDomain.FindIndex(src[at+1 : min(len(src), at+1+maxDomain)])
		if s == at || m == nil {
			continue
		}
		e := at + 1 + m[1]
		if s, e = clearOfEscapes(src, s, e); s < e {
			spans = append(spans, [2]int{s, e})
			pos = e
		}
	}
	return spans
}

// isTokenByte reports whether c may be part of a key or token.
func isTokenByte(c byte) bool {
	return isWordByte(c) || c == '-' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}

func isLocalByte(c byte) bool {
	return isWordByte(c) || c == '.' || c == '%' || c == '+' || c == '-'
}

// findCards finds runs of 13 digits or more, in groups split by single
// spaces or dashes, and keeps what cardSpans accepts.
func findCards(src []byte) [][2]int {
	var spans [][2]int
	for i := 0; i < len(src); {
		if !isDigit(src[i]) {
			i++
			continue
		}
		s, e, n := i, i, 0
		for e < len(src) {
			if isDigit(src[e]) {
				e++
				n++
				continue
			}
			if (src[e] == ' ' || src[e] == '-') && e+1 < len(src) && isDigit(src[e+1]) {
				e++
				continue
			}
			break
		}
		if s, e := clearOfEscapes(src, s, e); n >= 13 && s < e && !inDecimal(src, s, e) {
			spans = append(spans, cardSpans(src, s, e, startsWord(src, s))...)
		}
		i = e
	}
	return spans
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// inDecimal reports whether the digit run src[s:e] is part of a number with
// a fraction or an exponent ("0.0000000000000", "1234567890123456e3"),
// which a card number never is.
func inDecimal(src []byte, s, e int) bool {
	if s >= 2 && src[s-1] == '.' && isDigit(src[s-2]) {
		return true
	}
	if e+1 < len(src) && (src[e] == '.' || src[e] == 'e' || src[e] == 'E') {
		c := src[e+1]
		return isDigit(c) || (src[e] != '.' && (c == '+' || c == '-'))
	}
	return false
}

// regexpFinder finds a configured pattern's matches.
func regexpFinder(re *regexp.Regexp) finder {
	return func(src []byte) [][2]int {
		var spans [][2]int
		for _, m := range re.FindAllIndex(src, -1) {
			if s, e := clearOfEscapes(src, m[0], m[1]); s < e {
				spans = append(spans, [2]int{s, e})
			}
		}
		return spans
	}
}

// quoteState tells, for positions visited in increasing order, whether a
// JSON text has them inside a string. A card number written as a bare JSON
// number ("id": 4111111111111111) is replaced by the quoted mask, so that
// the body stays valid JSON; inside a string the mask goes unquoted.
type quoteState struct {
	json     bool // the body looks like JSON or an event stream of JSON
	pos      int  // bytes before pos have been scanned
	inString bool // at pos
}

// maskAt returns the mask for a match at src[at]; at only grows.
func (q *quoteState) maskAt(src []byte, at int) string {
	if !q.json {
		return Mask
	}
	for ; q.pos < at; q.pos++ {
		switch c := src[q.pos]; {
		case c == '"':
			q.inString = !q.inString
		case c == '\\' && q.inString:
			q.pos++ // the escaped byte cannot end the string
		}
	}
	if q.inString {
		return Mask
	}
	return `"` + Mask + `"`
}

// looksJSON reports whether b starts like a JSON object or array, or like
// an event stream (whose data lines are JSON), or is any other JSON value.
func looksJSON(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 {
		return false
	}
	return t[0] == '{' || t[0] == '[' || t[0] == ':' || bytes.HasPrefix(t, []byte("data:")) ||
		bytes.HasPrefix(t, []byte("event:")) || json.Valid(t)
}

// clearOfEscapes narrows [s, e) so that it neither starts nor ends inside a
// JSON escape sequence (\n, \", \\, \u00e9): replacing half of one would
// leave a body that no longer parses.
func clearOfEscapes(src []byte, s, e int) (int, int) {
	if a, b, ok := escapeAt(src, s); ok && a < s {
		s = b
	}
	if e > s {
		if a, b, ok := escapeAt(src, e-1); ok && b > e {
			e = a
		}
	}
	return s, e
}

// escapeAt finds the JSON escape sequence that covers src[i], if any.
func escapeAt(src []byte, i int) (start, end int, ok bool) {
	for k := i; k >= 0 && k >= i-5; k-- {
		if src[k] != '\\' || !escapeStart(src, k) {
			continue
		}
		n := 2
		if k+1 < len(src) && src[k+1] == 'u' {
			n = 6
		}
		end := min(k+n, len(src))
		return k, end, i < end
	}
	return 0, 0, false
}

// escapeStart reports whether the backslash at src[k] begins an escape: an
// even number of backslashes comes right before it.
func escapeStart(src []byte, k int) bool {
	n := 0
	for j := k - 1; j >= 0 && src[j] == '\\'; j-- {
		n++
	}
	return n%2 == 0
}

// startsWord reports whether src[s] starts a word: it is the first byte,
// or the byte before it is not a letter, digit or underscore, or is the end
// of a JSON escape (the "n" of "\nsk-…"). RE2's \b would refuse that last
// case and let a key written after a line break through.
func startsWord(src []byte, s int) bool {
	if s == 0 || !isWordByte(src[s-1]) {
		return true
	}
	_, _, ok := escapeAt(src, s-1)
	return ok
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// cardSpans splits the digit run src[s:e] into its groups (split at spaces
// and dashes) and returns the spans of consecutive groups that hold 13 to 19
// digits and pass the Luhn check, longest first from the left. Matching
// whole groups catches "4111 1111 1111 1111" inside "order 12 4111 1111
// 1111 1111 exp 12". In a span of several groups each has at least three
// digits, as printed card numbers do, so that a list of small numbers
// ("1 0 0 1 …") is not taken for one. The Luhn check keeps most long
// numbers that are not cards (ids, timestamps); about one in ten of those
// still passes by chance and is redacted.
//
// When the run does not start a word (as in "ID12 4111 …"), its first group
// is part of something else and only the groups after it are candidates.
func cardSpans(src []byte, s, e int, atWordStart bool) [][2]int {
	var groups [][2]int
	for i := s; i < e; {
		j := i
		for j < e && src[j] >= '0' && src[j] <= '9' {
			j++
		}
		groups = append(groups, [2]int{i, j})
		i = j + 1 // skip the separator
	}
	var spans [][2]int
	i := 0
	if !atWordStart {
		i = 1
	}
	for i < len(groups) {
		if j, ok := cardAt(src, groups, i); ok {
			spans = append(spans, [2]int{groups[i][0], groups[j][1]})
			i = j + 1
		} else {
			i++
		}
	}
	return spans
}

// cardAt returns the last group j such that groups[i..j] is a card number;
// it looks at no more than 19 digits' worth of groups. No card number
// starts with 0, and zero-padded ids often do.
func cardAt(src []byte, groups [][2]int, i int) (j int, ok bool) {
	digits, best := 0, -1
	for k := i; k < len(groups); k++ {
		n := groups[k][1] - groups[k][0]
		if k > i && (n < 3 || groups[i][1]-groups[i][0] < 3) {
			break
		}
		if digits += n; digits > 19 {
			break
		}
		if digits >= 13 && src[groups[i][0]] != '0' && luhnSpan(src, groups[i][0], groups[k][1]) {
			best = k
		}
	}
	return best, best >= 0
}

// luhnSpan reports whether src[s:e], separators skipped, has 13 to 19 digits
// that pass the Luhn check.
func luhnSpan(src []byte, s, e int) bool {
	sum, n := 0, 0
	for k := e - 1; k >= s; k-- {
		c := src[k]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 13 && n <= 19 && sum%10 == 0
}
