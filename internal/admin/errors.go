package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// The stable error codes of the admin API, besides the gateway's own 401s.
const (
	CodeInvalidJSON      = "invalid_json"               // 400: the body is not JSON
	CodeInvalidValue     = "invalid_value"              // 400: a field or query parameter has a bad value (param names it)
	CodeUnknownParameter = "unknown_parameter"          // 400: the body has a field the route does not take
	CodeMissingParameter = "missing_required_parameter" // 400: a required field is absent
	CodeTooLarge         = "request_too_large"          // 413: the body is over 1 MiB
	CodePermission       = "permission_denied"          // 403: a team's key on a master-only route
	CodeTeamNotFound     = "team_not_found"             // 404
	CodeKeyNotFound      = "key_not_found"              // 404
	CodeUnknownEndpoint  = "unknown_endpoint"           // 404
	CodeMethod           = "method_not_allowed"         // 405
	CodeTeamExists       = "team_exists"                // 409: the team name is taken
	CodeKeyRevoked       = "key_revoked"                // 409: a revoked key cannot be rotated
)

func invalidValue(param, format string, args ...any) *wire.Error {
	return wire.BadRequest(CodeInvalidValue, param, fmt.Sprintf(format, args...))
}

func missing(param string) *wire.Error {
	return wire.BadRequest(CodeMissingParameter, param, fmt.Sprintf("you must provide %s", param))
}

func teamNotFound(idOrName string) *wire.Error {
	return &wire.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: CodeTeamNotFound,
		Param: "team", Message: fmt.Sprintf("team %q does not exist", idOrName)}
}

func keyNotFound(id string) *wire.Error {
	return &wire.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: CodeKeyNotFound,
		Param: "key", Message: fmt.Sprintf("key %q does not exist", id)}
}

func unknownEndpoint(r *http.Request) *wire.Error {
	return &wire.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: CodeUnknownEndpoint,
		Message: "unknown endpoint: " + idOf(r)}
}

func methodNotAllowed(r *http.Request, allowed []string) *wire.Error {
	return &wire.Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: CodeMethod,
		Message: fmt.Sprintf("%s is not supported; use %s", idOf(r), strings.Join(allowed, " or "))}
}

func permissionDenied(r *http.Request) *wire.Error {
	return &wire.Error{Status: http.StatusForbidden, Type: "permission_error", Code: CodePermission,
		Message: idOf(r) + " needs the master key; a team's key may only read its own keys and usage"}
}

// teamErr maps a store error about a team: not found is 404, a taken name
// 409, anything else a 500 whose cause stays in the log.
func teamErr(err error, idOrName string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return teamNotFound(idOrName)
	case errors.Is(err, store.ErrConflict):
		return &wire.Error{Status: http.StatusConflict, Type: "invalid_request_error", Code: CodeTeamExists,
			Param: "name", Message: fmt.Sprintf("a team named %q already exists", idOrName), Cause: err}
	}
	return fmt.Errorf("team %q: %w", idOrName, err)
}

// keyErr maps a store error about a key.
func keyErr(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return keyNotFound(id)
	}
	return fmt.Errorf("key %q: %w", id, err)
}
