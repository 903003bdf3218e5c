package mockupstream

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"unicode/utf8"
)

const (
	// defaultDimensions is the vector size when the request names none.
	defaultDimensions = 8
	// maxDimensions bounds "dimensions" so a request cannot ask for gigabytes.
	maxDimensions = 4096
	// maxInputs is OpenAI's limit on the items of one request.
	maxInputs = 2048
)

// embeddingRequest is an OpenAI embeddings request.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

// embeddingInput is one input item: its identity for hashing, and its tokens.
type embeddingInput struct {
	key    []byte
	tokens int
}

// embedding is one item of the response; Embedding is a []float32 or a
// base64 string.
type embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// embeddings serves POST /v1/embeddings with deterministic unit vectors
// derived from a hash of each input.
func (s *Server) embeddings(c *call) error {
	var req embeddingRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return errorf(http.StatusBadRequest, "We could not parse the JSON body of your request: %v", err)
	}
	if req.Model == "" {
		return &apiError{status: http.StatusBadRequest, message: "you must provide a model parameter", param: "model"}
	}
	dims, err := req.dimensions()
	if err != nil {
		return err
	}
	inputs, err := embeddingInputs(req.Input)
	if err != nil {
		return err
	}
	prompt := 0
	for _, in := range inputs {
		prompt += in.tokens
	}
	if err := checkContext(c, prompt); err != nil {
		return err
	}
	data := make([]embedding, len(inputs))
	for i, in := range inputs {
		data[i] = embedding{Object: "embedding", Index: i, Embedding: encodeVector(vectorFor(in.key, dims), req.EncodingFormat)}
	}
	type usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	}
	writeJSON(c.w, http.StatusOK, struct {
		Object string      `json:"object"`
		Data   []embedding `json:"data"`
		Model  string      `json:"model"`
		Usage  usage       `json:"usage"`
	}{"list", data, req.Model, usage{prompt, prompt}})
	return nil
}

// dimensions returns the vector size asked for, or the default.
func (req *embeddingRequest) dimensions() (int, error) {
	if req.Dimensions == nil {
		return defaultDimensions, nil
	}
	if d := *req.Dimensions; d >= 1 && d <= maxDimensions {
		return d, nil
	}
	return 0, invalidValue("dimensions", fmt.Sprintf("dimensions must be in 1..%d", maxDimensions))
}

// embeddingInputs reads "input": a string, an array of strings, an array of
// token ids, or an array of token-id arrays.
func embeddingInputs(raw json.RawMessage) ([]embeddingInput, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []embeddingInput{textInput(one)}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 || len(items) > maxInputs {
		return nil, invalidInput()
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil {
		return []embeddingInput{{key: raw, tokens: len(tokens)}}, nil
	}
	inputs := make([]embeddingInput, 0, len(items))
	for _, item := range items {
		in, err := embeddingItem(item)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// embeddingItem reads one element of an input array: a string or token ids.
func embeddingItem(item json.RawMessage) (embeddingInput, error) {
	var text string
	if json.Unmarshal(item, &text) == nil {
		return textInput(text), nil
	}
	var tokens []int
	if json.Unmarshal(item, &tokens) == nil && len(tokens) > 0 {
		return embeddingInput{key: item, tokens: len(tokens)}, nil
	}
	return embeddingInput{}, invalidInput()
}

func textInput(text string) embeddingInput {
	return embeddingInput{key: []byte(text), tokens: max(1, ceilDiv(utf8.RuneCountInString(text), 4))}
}

func invalidInput() *apiError {
	return invalidValue("input", "'input' must be a non-empty string, array of strings, array of tokens, or array of token arrays")
}

// vectorFor returns a unit vector of dims components drawn from a hash of key.
func vectorFor(key []byte, dims int) []float32 {
	h := fnv.New64a()
	_, _ = h.Write(key)
	seed := h.Sum64()
	v := make([]float32, dims)
	norm := 0.0
	for i := range v {
		seed = splitmix(seed)
		x := float64(seed>>11)/float64(1<<53)*2 - 1
		v[i] = float32(x)
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		if norm > 0 {
			v[i] = float32(float64(v[i]) / norm)
		}
	}
	return v
}

// encodeVector returns v as encoding_format asks: the floats, or base64 of
// their little-endian float32 bytes.
func encodeVector(v []float32, format string) any {
	if format != "base64" {
		return v
	}
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(buf)
}
