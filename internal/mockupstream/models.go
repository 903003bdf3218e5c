package mockupstream

import (
	"net/http"
	"slices"
	"time"
)

// fixedModels are listed by GET /v1/models besides the models seen in requests.
var fixedModels = []string{"mock-gpt", "mock-claude", "mock-embedding"}

// modelCreated is the creation time reported for every model.
var modelCreated = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// openAIModel is a model in OpenAI's list format.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// anthropicModel is a model in Anthropic's list format.
type anthropicModel struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// modelIDs returns the fixed models and the models seen, sorted.
func (s *Server) modelIDs() []string {
	s.mu.Lock()
	ids := slices.Clone(fixedModels)
	for id := range s.seen {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// listModels serves GET /v1/models in the format of the caller's API.
func (s *Server) listModels(c *call) error {
	ids := s.modelIDs()
	if c.proto == protoAnthropic {
		data := make([]anthropicModel, len(ids))
		for i, id := range ids {
			data[i] = anthropicModelOf(id)
		}
		writeJSON(c.w, http.StatusOK, struct {
			Data    []anthropicModel `json:"data"`
			HasMore bool             `json:"has_more"`
			FirstID string           `json:"first_id"`
			LastID  string           `json:"last_id"`
		}{data, false, ids[0], ids[len(ids)-1]})
		return nil
	}
	data := make([]openAIModel, len(ids))
	for i, id := range ids {
		data[i] = openAIModelOf(id)
	}
	writeJSON(c.w, http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []openAIModel `json:"data"`
	}{"list", data})
	return nil
}

// getModel serves GET /v1/models/{id}: a listed model, else 404.
func (s *Server) getModel(c *call) error {
	id := c.r.PathValue("id")
	if !slices.Contains(s.modelIDs(), id) {
		return errorf(http.StatusNotFound, "The model '%s' does not exist or you do not have access to it.", id)
	}
	if c.proto == protoAnthropic {
		writeJSON(c.w, http.StatusOK, anthropicModelOf(id))
		return nil
	}
	writeJSON(c.w, http.StatusOK, openAIModelOf(id))
	return nil
}

func openAIModelOf(id string) openAIModel {
	return openAIModel{ID: id, Object: "model", Created: modelCreated.Unix(), OwnedBy: "mockupstream"}
}

func anthropicModelOf(id string) anthropicModel {
	return anthropicModel{ID: id, Type: "model", DisplayName: id, CreatedAt: modelCreated.Format(time.RFC3339)}
}

// notFound answers paths the mock does not serve, in the API's error format.
func (s *Server) notFound(c *call) error {
	return &apiError{
		status:  http.StatusNotFound,
		message: "Invalid URL (" + c.r.Method + " " + c.r.URL.Path + ")",
		code:    "unknown_url",
	}
}
