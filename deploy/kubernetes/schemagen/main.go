// Command schemagen turns the Kubernetes OpenAPI (swagger 2.0) specification into the JSON
// schema files kubeconform reads, so deploy/kubernetes can be checked with no network but
// the Go module proxy: the specification comes from the k8s.io/kubernetes module
// (api/openapi-spec/swagger.json), kubeconform from its own module. See validate.sh.
//
//	schemagen -spec swagger.json -out DIR
//
// writes DIR/<kind>-<group>-<version>.json (kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}
// naming: deployment-apps-v1.json, service-v1.json) for every kind the specification
// defines. Each file holds the kind's definition and every definition it reaches, with three
// changes kubeconform's published schemas also make: objects with properties refuse any other
// property (additionalProperties: false, as the API server's strict field validation does),
// and IntOrString and Quantity accept what their YAML forms are (a number or a string).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	spec := flag.String("spec", "", "the Kubernetes swagger.json")
	out := flag.String("out", "", "directory to write the schemas to")
	flag.Parse()
	if *spec == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: schemagen -spec swagger.json -out DIR")
		os.Exit(2)
	}
	n, err := generate(*spec, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
	fmt.Printf("schemagen: %d kinds written to %s\n", n, *out)
}

const (
	intOrString = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
	quantity    = "io.k8s.apimachinery.pkg.api.resource.Quantity"
	refPrefix   = "#/definitions/"
)

type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// generate writes one schema file per kind and returns how many.
func generate(specPath, outDir string) (int, error) {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return 0, err
	}
	var spec struct {
		Swagger     string                     `json:"swagger"`
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return 0, fmt.Errorf("%s: %w", specPath, err)
	}
	if len(spec.Definitions) == 0 {
		return 0, fmt.Errorf("%s: no definitions", specPath)
	}
	defs := make(map[string]any, len(spec.Definitions))
	for name, raw := range spec.Definitions {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return 0, fmt.Errorf("definition %s: %w", name, err)
		}
		defs[name] = fix(v)
	}
	if _, ok := defs[intOrString]; ok {
		defs[intOrString] = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	}
	if _, ok := defs[quantity]; ok {
		defs[quantity] = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	sort.Strings(names)
	written := map[string]string{}
	for _, name := range names {
		raw := spec.Definitions[name]
		var meta struct {
			GVK []gvk `json:"x-kubernetes-group-version-kind"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			return 0, fmt.Errorf("definition %s: %w", name, err)
		}
		for _, k := range meta.GVK {
			file := fileName(k)
			if prev, dup := written[file]; dup {
				return 0, fmt.Errorf("%s and %s both map to %s", prev, name, file)
			}
			written[file] = name
			schema := map[string]any{
				"$schema":     "http://json-schema.org/draft-07/schema#",
				"$ref":        refPrefix + name,
				"definitions": reach(defs, name),
			}
			out, err := json.Marshal(schema)
			if err != nil {
				return 0, err
			}
			if err := os.WriteFile(filepath.Join(outDir, file), out, 0o644); err != nil {
				return 0, err
			}
		}
	}
	if len(written) == 0 {
		return 0, errors.New("no definition names a kind (x-kubernetes-group-version-kind)")
	}
	return len(written), nil
}

// fileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json for a group, version
// and kind: the lower-case kind, the first label of the group (none for the core group), the
// version.
func fileName(k gvk) string {
	suffix := ""
	if k.Group != "" {
		suffix = "-" + strings.ToLower(strings.Split(k.Group, ".")[0])
	}
	return strings.ToLower(k.Kind) + suffix + "-" + strings.ToLower(k.Version) + ".json"
}

// fix makes every object schema with properties strict, recursively.
func fix(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = fix(x)
		}
		if _, ok := v["properties"]; ok {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = fix(x)
		}
		return v
	}
	return v
}

// reach returns the definitions reachable from name through $ref.
func reach(defs map[string]any, name string) map[string]any {
	out := map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if target, ok := strings.CutPrefix(ref, refPrefix); ok {
					if _, seen := out[target]; !seen {
						if d, ok := defs[target]; ok {
							out[target] = d
							walk(d)
						}
					}
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	out[name] = defs[name]
	walk(defs[name])
	return out
}
