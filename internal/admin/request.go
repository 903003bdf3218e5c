package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/tenant"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// TeamRequest is the body of POST /admin/teams and PATCH /admin/teams/{id}.
// On PATCH an absent field keeps its value, and null clears the nullable
// ones; rpm and tpm inside limits, and the fields of budget, are patched one
// by one.
type TeamRequest struct {
	Name            *string                        `json:"name,omitempty"`
	Metadata        Optional[map[string]string]    `json:"metadata,omitzero"`
	MaxKeyAge       *string                        `json:"max_key_age,omitempty"`      // "2160h", "90d"; "0s" turns the policy off
	RotationWarning *string                        `json:"rotation_warning,omitempty"` // "168h", "7d"
	Limits          *LimitsRequest                 `json:"limits,omitempty"`
	Budget          Optional[BudgetRequest]        `json:"budget,omitzero"` // null removes the budget
	ProviderKeys    Optional[[]tenant.ProviderKey] `json:"provider_keys,omitzero"`
}

// KeyRequest is the body of POST /admin/keys and PATCH /admin/keys/{id}.
type KeyRequest struct {
	Team               *string                 `json:"team,omitempty"` // id or name; creation only
	Name               *string                 `json:"name,omitempty"`
	AllowedModels      Optional[[]string]      `json:"allowed_models,omitzero"` // null or []: every model
	AllowedTiers       Optional[[]string]      `json:"allowed_tiers,omitzero"`  // null or []: every tier
	DefaultCriticality *string                 `json:"default_criticality,omitempty"`
	ExpiresAt          Optional[string]        `json:"expires_at,omitzero"`  // RFC 3339; null: never
	ExpiresIn          *string                 `json:"expires_in,omitempty"` // from now: "720h", "30d"
	Limits             *LimitsRequest          `json:"limits,omitempty"`
	Budget             Optional[BudgetRequest] `json:"budget,omitzero"`
}

// RotateRequest is the optional body of POST /admin/keys/{id}/rotate.
type RotateRequest struct {
	// Grace is how long the old secret keeps working; absent means 24h, "0s"
	// stops it at once.
	Grace *string `json:"grace,omitempty"`
}

// LimitsRequest sets rate limits; an absent field keeps its value, 0 is
// unlimited.
type LimitsRequest struct {
	RPM *int `json:"rpm,omitempty"`
	TPM *int `json:"tpm,omitempty"`
}

// BudgetRequest sets a budget. The limit is limit_usd, a decimal string or
// number read exactly (at most 9 decimals), or limit_nanos; when both are
// given they must agree.
type BudgetRequest struct {
	LimitUSD         *Decimal `json:"limit_usd,omitempty"`
	LimitNanos       *int64   `json:"limit_nanos,omitempty"`
	Period           *string  `json:"period,omitempty"` // daily | weekly | monthly (default) | none
	SoftPercent      *int     `json:"soft_percent,omitempty"`
	DowngradePercent *int     `json:"downgrade_percent,omitempty"`
}

// Optional is a request field that tells absent (Set false: keep) from null
// (Set, Value nil: clear) from a value. Its zero value is absent, which
// `omitzero` leaves out when encoding.
type Optional[T any] struct {
	Set   bool
	Value *T
}

// Some returns an Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: &v} }

// UnmarshalJSON is called only when the field is present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set, o.Value = true, nil
	if string(b) == "null" {
		return nil
	}
	o.Value = new(T)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(o.Value)
}

// MarshalJSON writes null for a cleared field.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}

// Decimal is a decimal amount sent as a JSON string ("12.50") or number
// (12.50). It keeps the text as sent, so no float ever touches it.
type Decimal string

// UnmarshalJSON accepts a string or a number literal.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = Decimal(s)
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		*d = Decimal(b)
	default:
		kind := map[byte]string{'{': "object", '[': "array", 't': "bool", 'f': "bool", 'n': "null"}[b[0]]
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[Decimal]()}
	}
	return nil
}

// MarshalJSON writes the amount as a string.
func (d Decimal) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }

// maxBody bounds an admin request body.
const maxBody = 1 << 20

// readJSON decodes the body strictly into v: unknown fields, trailing data
// and wrong types are 400s naming the field. An empty body is allowed only
// when optional.
func readJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &wire.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Code: CodeTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", maxBody)}
		}
		e := wire.BadRequest(CodeInvalidJSON, "", "could not read the request body")
		e.Cause = err
		return e
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return wire.BadRequest(CodeInvalidJSON, "", "the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return wire.BadRequest(CodeInvalidJSON, "", "the request body has data after its JSON object")
	}
	return nil
}

// decodeError turns a decoding failure into a 400 that names the field.
func decodeError(err error) *wire.Error {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return wire.BadRequest(CodeInvalidJSON, "", "the request body must be a JSON object")
		}
		return invalidValue(te.Field, "%s must be %s, not %s", te.Field, jsonKind(te.Type), te.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return wire.BadRequest(CodeUnknownParameter, name, fmt.Sprintf("unknown parameter %q", name))
	}
	e := wire.BadRequest(CodeInvalidJSON, "", "the request body is not valid JSON")
	e.Cause = err
	return e
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[Decimal]() {
		return "a decimal string or number"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	}
	return "a number"
}
