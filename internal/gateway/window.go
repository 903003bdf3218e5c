package gateway

import (
	"fmt"
	"net/http"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// fit checks that a chat request fits m's context window before any upstream
// call: prompt tokens plus the requested max output. Most requests pass on
// their byte length alone and no tokenizer runs. One that does not fit is
// trimmed under the trim policy, else refused with context_length_exceeded;
// the caller moves on to the next model under the fallback policy.
func (g *Gateway) fit(x *exchange, m *config.Model, eff config.Effective, body []byte) ([]byte, error) {
	window := eff.ContextWindow
	if x.endpoint != provider.Chat || window <= 0 {
		return body, nil
	}
	tok := x.st.tokenizer(m)
	maxOut := x.maxOutput
	if tok.BodyFitsWithoutCounting(body, maxOut, window) {
		return body, nil
	}
	n, err := x.countPrompt(tok, body)
	if err != nil {
		return nil, wire.BadRequest("invalid_value", "messages", "the messages could not be read: "+err.Error())
	}
	if n+maxOut <= window {
		return body, nil
	}
	if eff.ContextPolicy != config.ContextTrim {
		return nil, contextError(m, n, maxOut, window)
	}
	out, dropped, err := route.Trim(body, tok.CountChat, maxOut, window)
	if err != nil {
		return nil, contextError(m, n, maxOut, window)
	}
	x.trimmed = dropped
	return out, nil
}

func contextError(m *config.Model, prompt, maxOut, window int) *wire.Error {
	return &wire.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "context_length_exceeded",
		Param: "messages", Message: fmt.Sprintf("model %s has a context window of %d tokens; this request needs %d "+
			"(%d in the prompt, %d for the output)", m.Name, window, prompt+maxOut, prompt, maxOut)}
}
