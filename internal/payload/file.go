package payload

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// rotatingFile is the sink: a JSON-lines file that is renamed to path.1 when
// the next line would take it past max, keeping one old file. It belongs to
// the writer goroutine and has no locks.
//
// It writes each line with one write(2) and never fsyncs but at close: the
// lines are diagnostic, and a crash may lose the last ones. A file renamed
// by something else (logrotate) keeps being written under its new name
// until the next rotation; set max_file_bytes instead.
type rotatingFile struct {
	path string
	max  int64
	log  *slog.Logger
	f    *os.File // nil after a failed reopen; write tries again
	size int64    // bytes in f
	// failing is set while rotations fail, so that a streak is logged once.
	failing bool
}

// filePerm keeps payloads from other local users: they hold prompts.
const filePerm = 0o600

func openRotating(path string, max int64, log *slog.Logger) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max, log: log}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("open payload log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open payload log: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// write appends b, one whole line, rotating first when b would take the
// file past max (a line larger than max gets a file of its own). A failed
// rotation is logged and the line goes to the current file; only a failed
// write or reopen is returned, and then the line is lost.
func (r *rotatingFile) write(b []byte) error {
	if r.f != nil && r.size > 0 && r.size+int64(len(b)) > r.max {
		r.rotate()
	}
	if r.f == nil {
		if err := r.open(); err != nil {
			return err
		}
	}
	n, err := r.f.Write(b)
	r.size += int64(n)
	if err != nil {
		return fmt.Errorf("write payload log: %w", err)
	}
	return nil
}

// rotate renames the file to path.1, replacing the previous one, and opens
// a new one. When the rename fails the current file stays open and keeps
// growing; the next write tries again.
func (r *rotatingFile) rotate() {
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		if !r.failing {
			r.log.Error("payload log rotation failed; the file grows past max_file_bytes",
				slog.String("path", r.path), slog.Any("err", err))
		}
		r.failing = true
		return
	}
	r.failing = false
	if err := r.f.Close(); err != nil {
		r.log.Warn("payload log close after rotation failed", slog.String("path", r.path+".1"), slog.Any("err", err))
	}
	r.f, r.size = nil, 0
	if err := r.open(); err != nil {
		r.log.Error("payload log reopen after rotation failed; retried on the next line", slog.Any("err", err))
	}
}

// close fsyncs and closes the file.
func (r *rotatingFile) close() error {
	if r.f == nil {
		return nil
	}
	err := errors.Join(r.f.Sync(), r.f.Close())
	r.f = nil
	return err
}
