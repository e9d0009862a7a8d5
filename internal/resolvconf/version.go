package resolvconf

import "time"

// Version is one content of a resolver configuration as the kubelet reads it, for as long as it
// lasts.
type Version struct {
	Conf *Conf // nil when the file could not be read or parsed: the kubelet makes no sandbox then
	Err  error // why Conf is nil

	// Since is when this content was first read, and Before the last check that still found
	// the content it replaced: the file changed in between. Both are zero for the first content
	// read and for a listed configuration.
	Since, Before time.Time

	replaced chan struct{} // closed when a newer Version replaces this one; nil for a listed one
}

// Replaced returns a channel closed when a newer Version replaces v; never for a listed
// configuration.
func (v *Version) Replaced() <-chan struct{} { return v.replaced }
