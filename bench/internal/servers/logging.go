package servers

import "go.uber.org/zap"

// zapPrintf adapts a zap logger to the Printf-style logger interfaces of fasthttp and gnet.
type zapPrintf struct{ s *zap.SugaredLogger }

func (z zapPrintf) Printf(format string, args ...any) { z.s.Debugf(format, args...) }
func (z zapPrintf) Debugf(format string, args ...any) { z.s.Debugf(format, args...) }
func (z zapPrintf) Infof(format string, args ...any)  { z.s.Debugf(format, args...) }
func (z zapPrintf) Warnf(format string, args ...any)  { z.s.Warnf(format, args...) }
func (z zapPrintf) Errorf(format string, args ...any) { z.s.Errorf(format, args...) }

// Fatalf logs at error level and does not exit: a peer's fatal log line must not kill the
// harness's server process without it noticing.
func (z zapPrintf) Fatalf(format string, args ...any) { z.s.Errorf(format, args...) }
