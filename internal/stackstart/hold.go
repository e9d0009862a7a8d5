package stackstart

const (
	// frameBytes is the array in each frame of hold (its whole frame is about 40 bytes more).
	frameBytes = 1 << 10
	// holdFrames is how deep a holder calls hold.
	holdFrames = 26
	// holdBytes is the used stack the GC scans in a holder, about: its stack is 32 KiB, and
	// TestHolderStack measures it.
	holdBytes = 28 << 10
)

// hold parks its goroutine until stop is closed, frames calls deep, each with a frame of
// frameBytes: the GC then scans frames*frameBytes of used stack, and a little more.
//
//go:noinline
func hold(frames int, stop <-chan struct{}) {
	var frame [frameBytes]byte
	if frames > 1 {
		hold(frames-1, stop)
	} else {
		<-stop
	}
	keep(&frame)
}

// keep keeps a frame's array alive to the end of the frame, so that the compiler neither drops it
// nor shares its slot.
//
//go:noinline
func keep(*[frameBytes]byte) {}
