package websocket

import (
	"sync"

	"github.com/reactord/reactord/reactor"
)

// Group is a set of connections that receive the same messages: a chat room, a topic, the
// subscribers of a ticker. Broadcast encodes a message once and has every loop write it to its
// own members in one task, so the cost per member is a copy into its output buffer, with no
// lock or task per member. A closed connection leaves its groups by itself.
//
// All methods are safe from any goroutine. The zero Group is ready to use; a Group must not be
// copied after first use.
type Group struct {
	mu     sync.Mutex
	shards map[*reactor.Loop]*groupShard
	list   []*groupShard
	n      int
}

// groupShard holds the members living on one loop.
type groupShard struct {
	loop    *reactor.Loop
	mu      sync.Mutex
	members []*Conn
	index   map[*Conn]int
}

// NewGroup returns an empty group.
func NewGroup() *Group { return &Group{} }

// Add puts c in the group; adding a member twice does nothing. c must have opened (call it
// from OnOpen or later). It returns ErrClosed for a connection that has closed, and
// ErrInvalidArgument for a nil or unopened c.
func (g *Group) Add(c *Conn) error {
	loop := c.connLoop()
	if loop == nil {
		return ErrInvalidArgument
	}
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return ErrClosed
	}
	for _, x := range c.groups {
		if x == g {
			c.mu.Unlock()
			return nil
		}
	}
	c.groups = append(c.groups, g)
	c.mu.Unlock()

	sh := g.shard(loop)
	sh.mu.Lock()
	if _, ok := sh.index[c]; !ok {
		sh.index[c] = len(sh.members)
		sh.members = append(sh.members, c)
		g.mu.Lock()
		g.n++
		g.mu.Unlock()
	}
	sh.mu.Unlock()

	// The connection may have closed after the check above and before it was inserted, in
	// which case its OnClose looked for it here too early: take it out again.
	c.mu.Lock()
	gone := c.gone
	c.mu.Unlock()
	if gone {
		g.Remove(c)
		return ErrClosed
	}
	return nil
}

// connLoop returns c's loop, or nil for a nil or unopened connection.
func (c *Conn) connLoop() *reactor.Loop {
	if c == nil {
		return nil
	}
	return c.Loop()
}

func (g *Group) shard(l *reactor.Loop) *groupShard {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shards == nil {
		g.shards = make(map[*reactor.Loop]*groupShard)
	}
	sh := g.shards[l]
	if sh == nil {
		sh = &groupShard{loop: l, index: make(map[*Conn]int)}
		g.shards[l] = sh
		g.list = append(g.list, sh)
	}
	return sh
}

// Remove takes c out of the group and reports whether it was a member.
func (g *Group) Remove(c *Conn) bool {
	loop := c.connLoop()
	if loop == nil {
		return false
	}
	g.mu.Lock()
	sh := g.shards[loop]
	g.mu.Unlock()
	if sh == nil {
		return false
	}
	sh.mu.Lock()
	i, ok := sh.index[c]
	if ok {
		last := len(sh.members) - 1
		moved := sh.members[last]
		sh.members[i] = moved
		sh.index[moved] = i
		sh.members[last] = nil
		sh.members = sh.members[:last]
		delete(sh.index, c)
	}
	sh.mu.Unlock()
	if ok {
		g.mu.Lock()
		g.n--
		g.mu.Unlock()
		c.mu.Lock()
		for k, x := range c.groups {
			if x == g {
				c.groups = append(c.groups[:k], c.groups[k+1:]...)
				break
			}
		}
		c.mu.Unlock()
	}
	return ok
}

// Len returns the number of members.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Broadcast sends one message to every member: encoded once (compressed at most once per
// compression kind), written by each loop to its members in one task. Members at their send
// limit get the slow-consumer policy; members that closed meanwhile are skipped. data is
// copied before Broadcast returns. Errors: ErrInvalidArgument for a bad type, ErrInvalidUTF8.
func (g *Group) Broadcast(typ MessageType, data []byte) error {
	var p *prepared
	g.mu.Lock()
	shards := append([]*groupShard(nil), g.list...)
	g.mu.Unlock()
	for _, sh := range shards {
		sh.mu.Lock()
		empty := len(sh.members) == 0
		var u *Upgrader
		if !empty {
			u = sh.members[0].u
		}
		sh.mu.Unlock()
		if empty {
			continue
		}
		if p == nil {
			var err error
			if p, err = newPrepared(u, typ, data); err != nil {
				return err
			}
		}
		sh.loop.Post(func() {
			sh.mu.Lock()
			defer sh.mu.Unlock()
			for _, c := range sh.members {
				c.sendPrepared(p)
			}
		})
	}
	if p == nil {
		return checkMessage(typ, data)
	}
	return nil
}
