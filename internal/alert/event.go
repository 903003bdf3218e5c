package alert

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// Event states.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Event is one change or reminder of an alert: what the log line, the
// webhooks and the history carry. Its Labels must not be modified.
type Event struct {
	Name  string `json:"name"`
	State string `json:"state"` // StateFiring or StateResolved
	// Repeat marks a firing event sent again after the cooldown.
	Repeat    bool              `json:"repeat"`
	Value     float64           `json:"value"`
	Threshold float64           `json:"threshold"`
	Labels    map[string]string `json:"labels"`
	StartedAt time.Time         `json:"started_at"` // when the alert first fired
	At        time.Time         `json:"at"`
	Message   string            `json:"message"`
}

// Alert is an active alert. Its Labels must not be modified.
type Alert struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
	Value     float64           `json:"value"` // as of the last evaluation
	Threshold float64           `json:"threshold"`
	Message   string            `json:"message"`
	StartedAt time.Time         `json:"started_at"`
	LastSent  time.Time         `json:"last_sent_at"` // the last firing event
}

// Snapshot is the engine's state for GET /admin/alerts.
type Snapshot struct {
	Active   []Alert      `json:"active"`  // by name, then labels
	History  []Event      `json:"history"` // newest first, at most 100
	Webhooks WebhookStats `json:"webhooks"`
}

// WebhookStats counts webhook deliveries since the engine started.
type WebhookStats struct {
	Queued    int    `json:"queued"`
	Delivered uint64 `json:"delivered"`
	// Failed deliveries were given up after the last try, or refused (4xx).
	Failed uint64 `json:"failed"`
	// Dropped deliveries never went out: pushed from a full queue as its
	// oldest, or still queued when Close ran out of time.
	Dropped uint64 `json:"dropped"`
}

// key identifies one alert: its name and labels.
func key(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString("\x00" + k + "=" + labels[k])
	}
	return b.String()
}

// logEvent writes the event's one structured line: warning when firing,
// info when resolved.
func logEvent(ctx context.Context, log *slog.Logger, ev *Event) {
	level := slog.LevelWarn
	if ev.State == StateResolved {
		level = slog.LevelInfo
	}
	if !log.Enabled(ctx, level) {
		return
	}
	labels := make([]any, 0, len(ev.Labels))
	for _, k := range slices.Sorted(maps.Keys(ev.Labels)) {
		labels = append(labels, slog.String(k, ev.Labels[k]))
	}
	log.LogAttrs(ctx, level, "alert",
		slog.String("event", "alert"),
		slog.String("name", ev.Name),
		slog.String("state", ev.State),
		slog.Bool("repeat", ev.Repeat),
		slog.Float64("value", ev.Value),
		slog.Float64("threshold", ev.Threshold),
		slog.Group("labels", labels...),
		slog.Time("started_at", ev.StartedAt),
		slog.String("message", ev.Message),
	)
}

// body encodes ev as a webhook of the given format.
func body(format string, ev *Event) ([]byte, error) {
	if format == config.WebhookSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{slackText(ev)})
	}
	return json.Marshal(ev)
}

// slackText is a one-line Slack message: "[FIRING] name: message".
func slackText(ev *Event) string {
	tag := "[RESOLVED]"
	switch {
	case ev.State == StateFiring && ev.Repeat:
		tag = "[FIRING, still]"
	case ev.State == StateFiring:
		tag = "[FIRING]"
	}
	return slackEscape.Replace(tag + " " + ev.Name + ": " + ev.Message)
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
