package config

import (
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Store defaults.
const (
	DefaultStoreDriver = "sqlite"
	DefaultStorePath   = "tollgate.db"
)

// store reads the store section. A relative path is taken beside the
// configuration file, so the same file works from any working directory.
func (d *decoder) store(c *Config, p pair) {
	c.Store = Store{Driver: DefaultStoreDriver, Path: DefaultStorePath}
	if p.val != nil {
		f := d.fields(p.val, "store", "driver", "path", "journal")
		if q, ok := f["driver"]; ok {
			if s, ok := d.oneOf(q.val, "store.driver", "driver", []string{DefaultStoreDriver}); ok {
				c.Store.Driver = s
			}
		}
		if q, ok := f["path"]; ok {
			if s, ok := d.str(q.val, "store.path"); ok && s != "" {
				c.Store.Path = s
			} else if ok {
				d.errorf(deref(q.val), "store.path: must not be empty")
			}
		}
		if q, ok := f["journal"]; ok {
			if s, ok := d.str(q.val, "store.journal"); ok {
				c.Store.Journal = s
			}
		}
	}
	c.Store.Path = besideFile(d.file, c.Store.Path)
	if c.Store.Journal == "" {
		c.Store.Journal = c.Store.Path + ".journal"
	}
	c.Store.Journal = besideFile(d.file, c.Store.Journal)
}

// besideFile resolves a relative path against the directory of the config
// file; names that are not files on disk (the demo's) leave it as it is.
func besideFile(file, path string) string {
	if filepath.IsAbs(path) || file == "" || filepath.Ext(file) == "" {
		return path
	}
	return filepath.Join(filepath.Dir(file), path)
}

// rateLimits reads {rpm, tpm}; each optional, whole numbers ≥ 0.
func (d *decoder) rateLimits(n *yaml.Node, what string) RateLimits {
	var l RateLimits
	f := d.fields(n, what, "rpm", "tpm")
	if q, ok := f["rpm"]; ok {
		l.RPM, _ = d.intRange(q.val, what+".rpm", 0, maxInt)
	}
	if q, ok := f["tpm"]; ok {
		l.TPM, _ = d.intRange(q.val, what+".tpm", 0, maxInt)
	}
	return l
}
