package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Parse builds the configuration from defaults, the file named by -config (if any) and the
// command-line flags in args (without the program name), then validates it.
//
// It returns ErrHelp after writing the usage to usage when -h or -help is given. Every other
// problem is an *Error (errors.Is(err, ErrInvalid)) naming the key. A Config with ShowVersion
// set is returned without validation, so -version works whatever else is on the line.
// Parse touches nothing but the config file (read) and stat calls on paths.
func Parse(args []string, usage io.Writer) (Config, error) {
	cfg := Defaults()
	fs, firstErr := newFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if usage != nil {
				WriteUsage(usage)
			}
			return cfg, ErrHelp
		}
		return cfg, flagError(err, *firstErr)
	}
	if fs.NArg() > 0 {
		return cfg, errorf("arguments", "unexpected argument %q (every setting is a flag)", fs.Arg(0))
	}
	if cfg.ShowVersion {
		return cfg, nil
	}
	if cfg.ConfigFile != "" {
		fileCfg := Defaults()
		if err := loadFile(cfg.ConfigFile, &fileCfg); err != nil {
			return cfg, err
		}
		// Apply the command line again on top of the file: flags win. The flags parsed
		// cleanly once, so they parse cleanly again.
		fs2, firstErr2 := newFlagSet(&fileCfg)
		if err := fs2.Parse(args); err != nil {
			return fileCfg, flagError(err, *firstErr2)
		}
		cfg = fileCfg
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// newFlagSet returns a flag set bound to c's fields. The returned pointer receives the first
// *Error raised by a value's Set, so the caller can report it with the key's name rather than
// the flag package's wording.
func newFlagSet(c *Config) (*flag.FlagSet, **Error) {
	fs := flag.NewFlagSet("reactord", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // Parse prints the usage itself, only for -h
	first := new(*Error)
	for _, o := range options {
		fs.Var(&recordingValue{value: o.bind(c), key: o.name, first: first}, o.name, o.usage)
	}
	fs.StringVar(&c.ConfigFile, "config", "", "read settings from this TOML file; flags override it")
	fs.BoolVar(&c.ShowVersion, "version", false, "print the version and exit")
	return fs, first
}

// recordingValue wraps a value to remember the first failing key.
type recordingValue struct {
	value
	key   string
	first **Error
}

func (r *recordingValue) Set(s string) error {
	err := r.value.Set(s)
	if err != nil && *r.first == nil {
		*r.first = &Error{Key: r.key, Reason: err.Error()}
	}
	return err
}

// IsBoolFlag lets "-reuseport" stand alone for boolean keys.
func (r *recordingValue) IsBoolFlag() bool {
	b, ok := r.value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// flagError turns the flag package's error into an *Error naming the key.
func flagError(err error, first *Error) error {
	if first != nil {
		return first
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return errorf(name, "unknown flag (see -h)")
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return errorf(name, "needs a value")
	}
	return errorf("flags", "%s", msg)
}

// loadFile reads a TOML file into c. Unknown keys, nested tables and wrongly typed values
// are errors naming the key.
func loadFile(path string, c *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return errorf("config", "cannot read %s: %v", path, err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return errorf("config", "%s: %v", path, err)
	}
	byName := make(map[string]option, len(options))
	for _, o := range options {
		byName[o.name] = o
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same key first every time
	for _, k := range keys {
		o, ok := byName[k]
		if !ok {
			return errorf(k, "unknown key in %s", path)
		}
		if err := o.bind(c).setFile(raw[k]); err != nil {
			return errorf(k, "%v (in %s)", err, path)
		}
	}
	return nil
}

// WriteUsage writes the -h text: a synopsis and every flag with its placeholder, meaning and
// default.
func WriteUsage(w io.Writer) {
	d := Defaults()
	var b strings.Builder
	b.WriteString("Usage: reactord [flags]\n\n")
	b.WriteString("reactord serves static files (or its built-in page), /healthz and /metrics over an\n")
	b.WriteString("event-loop HTTP/1.1 server. Every flag except -config and -version can also be set\n")
	b.WriteString("in the -config file, a TOML file using the flag names as keys; flags override the file.\n")
	b.WriteString("Safe by default: only GET, HEAD and OPTIONS are served (other standard methods 405,\n")
	b.WriteString("unknown ones 501), names starting with \".\" are 404 unless -serve-dotfiles, and a\n")
	b.WriteString("directory without index.html is 403 unless -dir-listing. See docs/OPERATIONS.md.\n\n")
	b.WriteString("Flags:\n")
	line := func(name, arg, usage, def string) {
		head := "  -" + name
		if arg != "" {
			head += " " + arg
		}
		fmt.Fprintf(&b, "%s\n    \t%s", head, usage)
		if def != "" {
			fmt.Fprintf(&b, " (default %s)", def)
		}
		b.WriteString("\n")
	}
	line("config", "FILE", "read settings from this TOML file; flags override it", "")
	for _, o := range options {
		def := o.bind(&d).String()
		switch {
		case o.name == "loops":
			def = "" // the usage text says GOMAXPROCS; the number depends on the machine
		case def == "false" || def == "0" || def == "":
			def = ""
		case o.arg == "DURATION" || o.arg == "SIZE" || o.arg == "N":
		default:
			def = fmt.Sprintf("%q", def)
		}
		line(o.name, o.arg, o.usage, def)
	}
	line("version", "", "print the version and exit", "")
	b.WriteString("  -h, -help\n    \tprint this help and exit\n")
	b.WriteString("\nSignals: SIGTERM or SIGINT shut down gracefully within -shutdown-timeout;\n")
	b.WriteString("SIGHUP reloads the -config file and the flags (an invalid file changes nothing)\n")
	b.WriteString("and opens the -access-log file again; SIGUSR2 starts the binary again with the\n")
	b.WriteString("listening sockets (zero-downtime upgrade). See docs/OPERATIONS.md.\n")
	_, _ = io.WriteString(w, b.String())
}
