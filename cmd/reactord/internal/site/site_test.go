package site

import (
	"errors"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	page, err := Render(Info{Version: "v0.3.0", Poller: "epoll", Loops: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<td id="version">v0.3.0</td>`, `<td id="poller">epoll</td>`, `<td id="loops">4</td>`, `href="/healthz"`, `href="/metrics"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	page, err = Render(Info{Version: "<script>", Poller: "p", Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(page), "<script>") {
		t.Error("version not escaped")
	}
	if _, err := Render(Info{Poller: "epoll"}); !errors.Is(err, ErrIncomplete) {
		t.Errorf("missing version: %v", err)
	}
}
