package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// A miniature of the Kubernetes specification: one kind in a group, one in the core group,
// and the two types whose YAML forms differ from their swagger type.
const miniSpec = `{
  "swagger": "2.0",
  "definitions": {
    "io.k8s.api.apps.v1.Thing": {
      "type": "object",
      "required": ["spec"],
      "properties": {
        "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.ThingSpec"},
        "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
      },
      "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Thing", "version": "v1"}]
    },
    "io.k8s.api.apps.v1.ThingSpec": {
      "type": "object",
      "properties": {
        "memory": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
      }
    },
    "io.k8s.api.core.v1.Widget": {
      "type": "object",
      "properties": {"name": {"type": "string"}},
      "x-kubernetes-group-version-kind": [{"group": "", "kind": "Widget", "version": "v1"}]
    },
    "io.k8s.api.core.v1.Unrelated": {"type": "object", "properties": {}},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"}
  }
}`

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "swagger.json")
	if err := os.WriteFile(spec, []byte(miniSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "schemas")
	n, err := generate(spec, out)
	if err != nil || n != 2 {
		t.Fatalf("generate = %d, %v", n, err)
	}
	var thing struct {
		Ref  string                    `json:"$ref"`
		Defs map[string]map[string]any `json:"definitions"`
	}
	b, err := os.ReadFile(filepath.Join(out, "thing-apps-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &thing); err != nil {
		t.Fatal(err)
	}
	if thing.Ref != "#/definitions/io.k8s.api.apps.v1.Thing" {
		t.Errorf("$ref %q", thing.Ref)
	}
	var names []string
	for name := range thing.Defs {
		names = append(names, name)
	}
	if len(names) != 4 || thing.Defs["io.k8s.api.core.v1.Unrelated"] != nil {
		t.Errorf("definitions reached from Thing: %v", names)
	}
	if thing.Defs["io.k8s.api.apps.v1.ThingSpec"]["additionalProperties"] != false {
		t.Error("an object with properties is not strict")
	}
	labels := thing.Defs["io.k8s.api.apps.v1.ThingSpec"]["properties"].(map[string]any)["labels"].(map[string]any)
	if !reflect.DeepEqual(labels["additionalProperties"], map[string]any{"type": "string"}) {
		t.Errorf("a map's value schema was replaced: %v", labels)
	}
	want := map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	if !reflect.DeepEqual(thing.Defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"], want) {
		t.Errorf("IntOrString: %v", thing.Defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"])
	}
	if _, err := os.Stat(filepath.Join(out, "widget-v1.json")); err != nil {
		t.Errorf("core kind file: %v", err)
	}

	if err := os.WriteFile(spec, []byte(`{"definitions": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := generate(spec, out); err == nil {
		t.Error("an empty specification was accepted")
	}
}

func TestFileName(t *testing.T) {
	for _, tc := range []struct {
		k    gvk
		want string
	}{
		{gvk{"apps", "v1", "Deployment"}, "deployment-apps-v1.json"},
		{gvk{"", "v1", "Service"}, "service-v1.json"},
		{gvk{"autoscaling", "v2", "HorizontalPodAutoscaler"}, "horizontalpodautoscaler-autoscaling-v2.json"},
		{gvk{"networking.k8s.io", "v1", "Ingress"}, "ingress-networking-v1.json"},
	} {
		if got := fileName(tc.k); got != tc.want {
			t.Errorf("fileName(%v) = %s, want %s", tc.k, got, tc.want)
		}
	}
}
