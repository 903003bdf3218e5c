package mockupstream

import (
	"encoding/json"
	"io"
	"net/http"
)

// maxRuleBody bounds the body of POST /_faults.
const maxRuleBody = 64 << 10

// handleStats serves GET /_stats.
func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// handleReset serves POST /_reset.
func (s *Server) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// handleListFaults serves GET /_faults: the live rules, Times being what is left.
func (s *Server) handleListFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// handleAddFault serves POST /_faults with a JSON Rule; a rule whose fault
// spec does not parse, or unknown fields, get a 400.
func (s *Server) handleAddFault(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRuleBody))
	dec.DisallowUnknownFields()
	var rule Rule
	if err := dec.Decode(&rule); err != nil {
		controlError(w, "decode rule: "+err.Error())
		return
	}
	if rule.Times < 0 {
		controlError(w, "times must not be negative")
		return
	}
	if _, err := parseFault(rule.Fault); err != nil {
		controlError(w, err.Error())
		return
	}
	s.AddFault(rule)
	writeJSON(w, http.StatusCreated, rule)
}

// handleClearFaults serves DELETE /_faults.
func (s *Server) handleClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

// controlError answers a bad control request in the OpenAI error format.
func controlError(w http.ResponseWriter, msg string) {
	(&apiError{status: http.StatusBadRequest, message: "mock upstream: " + msg}).write(w, protoOpenAI, "")
}
